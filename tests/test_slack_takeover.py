"""A Slack answer taken over by a second attempt: its messages edited in place, not re-posted.

The responder talks to the fake Slack Web API through the client a worker uses, its parts
recorded in a reply record on the in-process cache. A first attempt shows a whole answer and
is never marked shown (its worker died before the ack); a second one, resumed from the
record as :class:`bot.answering.AnswerService` resumes it, writes its own answer. The SIGKILL
test with real worker processes is in ``tests/test_faults.py``; these cover a second answer
with fewer parts, a part posted but never recorded (found by its metadata), and the fake's
``chat.delete``.
"""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.messages import ReplyAddress
from bot.replies import ReplyRecord
from bot.slack.channel import SlackResponder
from bot.state.memory import MemoryCache
from tests.fakes.slack_api import FakeSlackAPI
from tests.takeover_support import attempt_with
from tests.test_slack import until

pytestmark = pytest.mark.e2e

JOB = "job-0001"
CHANNEL, THREAD = "C1", "1710000000.000100"
ADDRESS = ReplyAddress("slack", CHANNEL, thread_ts=THREAD)


def paragraph(n: int) -> str:
    """About 1,600 characters: one section block each (two would pass 3,000)."""
    head = f"[para {n}] "
    return head + ("HNBT closed higher that day. " * 60)[: 1600 - len(head)].strip()


def answer_of(paragraphs: int) -> str:
    """An answer of ``paragraphs`` sections: 6 make a message (Slack's ~12,000 characters of
    blocks per message), so 13 make three."""
    return "\n\n".join(paragraph(n) for n in range(paragraphs))


LONG = answer_of(13)  # three messages: 6 + 6 + 1 sections (and the buttons)
SHORTER = answer_of(10)  # two


@pytest.fixture
def client(slack_api: FakeSlackAPI) -> AsyncWebClient:
    return AsyncWebClient(token=slack_api.token, base_url=slack_api.api_url)


async def attempt(client: AsyncWebClient, replies: ReplyRecord, text: str) -> SlackResponder:
    """One attempt of the job, from the reply record, as a worker runs it; never ``shown``."""
    return await attempt_with(SlackResponder(client, ADDRESS, replies=replies), replies, JOB, text)


def shown_paragraphs(slack: FakeSlackAPI) -> list[list[int]]:
    """Per message the thread shows, the numbers of the paragraphs its sections hold."""
    return [
        [
            int(block["text"]["text"].split("]")[0].removeprefix("[para "))
            for block in message.get("blocks", [])
            if block["type"] == "section"
        ]
        for message in slack.messages_in(CHANNEL, THREAD)
    ]


def posts(slack: FakeSlackAPI) -> int:
    return len(slack.calls_to("chat.postMessage"))


async def test_a_shorter_answer_taken_over_edits_its_parts_and_deletes_the_extra_one(
    slack_api: FakeSlackAPI, client: AsyncWebClient
) -> None:
    replies = ReplyRecord(MemoryCache())
    first = await attempt(client, replies, LONG)  # its worker dies before the job is acked
    assert [len(p) for p in shown_paragraphs(slack_api)] == [6, 6, 1]

    second = await attempt(client, replies, SHORTER)

    assert shown_paragraphs(slack_api) == [list(range(6)), list(range(6, 10))]
    assert posts(slack_api) == 3  # the first attempt's placeholder and two parts: no more
    assert first.placeholder is not None and second.placeholder is not None
    kept, dropped = first.placeholder.split(","), first.placeholder.split(",")[2]
    assert second.placeholder.split(",") == kept[:2] and slack_api.deleted == {dropped}
    record = await replies.get(JOB)
    assert record is not None and record.message == second.placeholder
    (last,) = slack_api.messages_in(CHANNEL, THREAD)[-1:]
    assert last["blocks"][-1]["type"] == "actions"  # the buttons moved to the new last part


async def test_a_part_posted_but_never_recorded_is_found_by_its_metadata_not_posted_again(
    slack_api: FakeSlackAPI, client: AsyncWebClient
) -> None:
    replies = ReplyRecord(MemoryCache())
    hold = slack_api.hold(
        lambda c: c.method == "chat.postMessage" and "[para 12]" in str(c.args.get("text"))
    )
    first = asyncio.create_task(attempt(client, replies, LONG))
    await until(hold.reached.is_set)
    first.cancel()  # dead before the third part's ts is recorded, as after a SIGKILL
    await asyncio.gather(first, return_exceptions=True)
    hold.release()
    await until(lambda: len(slack_api.messages_in(CHANNEL, THREAD)) == 3)
    record = await replies.get(JOB)
    assert record is not None and record.message is not None
    assert record.message.count(",") == 1  # the placeholder and part 2: part 3 never recorded

    second = await attempt(client, replies, LONG)

    assert shown_paragraphs(slack_api) == [list(range(6)), list(range(6, 12)), [12]]
    assert posts(slack_api) == 3 and slack_api.deleted == set()
    assert second.placeholder == ",".join(m["ts"] for m in slack_api.messages_in(CHANNEL, THREAD))


async def test_the_fake_deletes_like_slack(slack_api: FakeSlackAPI, client: AsyncWebClient) -> None:
    slack_api.seed_thread(CHANNEL, THREAD, [{"user": "U1", "text": "parent", "ts": THREAD}])
    parent = await client.chat_postMessage(channel=CHANNEL, text="top")
    reply = await client.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="in it")
    mine = await client.chat_postMessage(channel=CHANNEL, thread_ts=THREAD, text="mine")

    deleted = await client.chat_delete(channel=CHANNEL, ts=mine["ts"])
    await client.chat_delete(channel=CHANNEL, ts=parent["ts"])  # it has a reply

    assert deleted["ts"] == mine["ts"]
    thread = await client.conversations_replies(channel=CHANNEL, ts=THREAD)
    assert [m["text"] for m in thread["messages"]] == ["parent"]
    history = await client.conversations_history(channel=CHANNEL)
    (tombstone,) = history["messages"]
    assert (tombstone["ts"], tombstone["subtype"]) == (parent["ts"], "tombstone")
    assert reply["ts"] in {m["ts"] for m in slack_api.messages_in(CHANNEL, parent["ts"])}
    for method, ts, error in [
        ("chat_delete", mine["ts"], "message_not_found"),  # already deleted
        ("chat_update", mine["ts"], "message_not_found"),
        ("chat_delete", THREAD, "cant_delete_message"),  # a user's message
        ("chat_update", THREAD, "cant_update_message"),
    ]:
        with pytest.raises(SlackApiError) as caught:
            await getattr(client, method)(channel=CHANNEL, ts=ts, text="x")
        assert caught.value.response["error"] == error
