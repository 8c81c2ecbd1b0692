"""A Discord answer taken over by a second attempt: its messages edited in place, not re-sent.

The responder talks to the fake Discord through the REST client a worker uses, its parts
recorded in a reply record on the in-process cache. A first attempt shows a whole answer and
is never marked shown (its worker died before the ack); a second one, resumed from the
record as :class:`bot.answering.AnswerService` resumes it, writes a shorter answer. The
SIGKILL tests with real worker processes are in ``tests/test_discord_faults.py``; these
cover the ``/ask`` webhook path (a follow-up made but never recorded is read back from the
channel: webhook messages take no nonce), a second answer with fewer parts, and the fake's
nonces.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.discord.channel import DiscordResponder
from bot.discord.rest import DiscordREST, use_api_url
from bot.messages import ReplyAddress
from bot.replies import ReplyRecord
from bot.state.memory import MemoryCache
from tests.fakes.discord_api import APPLICATION_ID, BOT_ID, CHANNEL_ID, GUILD_ID, FakeDiscord
from tests.takeover_support import attempt_with
from tests.test_slack import until

pytestmark = pytest.mark.e2e

JOB = "job-0001"
PARAGRAPH = "HNBT closed higher that day. " * 45
LONG = "\n\n".join(f"Part {n}: {PARAGRAPH}" for n in range(3))  # three messages


@pytest.fixture
async def rest(discord_api: FakeDiscord) -> AsyncIterator[DiscordREST]:
    use_api_url(discord_api.api_url)
    client = DiscordREST(discord_api.token, discord_api.api_url)
    yield client
    await client.close()


async def attempt(
    rest: DiscordREST, address: ReplyAddress, replies: ReplyRecord, text: str
) -> DiscordResponder:
    """One attempt of the job, from the reply record, as a worker runs it; never ``shown``."""
    responder = DiscordResponder(rest, address, question="q", replies=replies)
    return await attempt_with(responder, replies, JOB, text)


async def deferred(discord_api: FakeDiscord, asked: dict[str, Any]) -> ReplyAddress:
    """Defer ``/ask`` as the gateway process does; the address its job answers at."""
    url = f"{discord_api.api_url}/interactions/{asked['id']}/{asked['token']}/callback"
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, json={"type": 5})).status_code == 204
    return ReplyAddress(
        "discord",
        CHANNEL_ID,
        workspace_id=GUILD_ID,
        application_id=APPLICATION_ID,
        interaction_token=asked["token"],
    )


async def test_an_ask_answer_taken_over_edits_its_messages_and_drops_the_extra_ones(
    discord_api: FakeDiscord, rest: DiscordREST
) -> None:
    asked = discord_api.slash("ask", {"question": "q"})
    address = await deferred(discord_api, asked)
    replies = ReplyRecord(MemoryCache())
    await attempt(rest, address, replies, LONG)  # its worker dies before the job is acked
    assert len(discord_api.followups(asked["token"])) == 2

    shorter = f"Part 0: {PARAGRAPH}\n\nPart 1: the second attempt ends here. {PARAGRAPH}"
    await attempt(rest, address, replies, shorter)

    original = discord_api.original(asked["token"])
    followups = discord_api.followups(asked["token"])
    assert original is not None and original["content"].startswith("Part 0:")
    assert [m["content"][:37] for m in followups] == ["Part 1: the second attempt ends here."]
    assert len(discord_api.calls_to("POST", rf"/webhooks/{APPLICATION_ID}/[^/]+")) == 2


async def test_an_ask_follow_up_made_but_never_recorded_is_found_not_sent_again(
    discord_api: FakeDiscord, rest: DiscordREST
) -> None:
    asked = discord_api.slash("ask", {"question": "q"})
    address = await deferred(discord_api, asked)
    replies = ReplyRecord(MemoryCache())
    hold = discord_api.hold(
        "POST", rf"/webhooks/{APPLICATION_ID}/[^/]+", lambda c: "Part 2:" in str(c.json)
    )
    first = asyncio.create_task(attempt(rest, address, replies, LONG))
    await until(hold.reached.is_set)
    first.cancel()  # dead before the follow-up's id is recorded, as after a SIGKILL
    await asyncio.gather(first, return_exceptions=True)
    hold.release()
    await until(lambda: len(discord_api.followups(asked["token"])) == 2)
    record = await replies.get(JOB)
    assert record is not None and record.message is not None
    assert record.message.count("h:") == 2  # @original and part 1: part 2 was never recorded

    await attempt(rest, address, replies, LONG)

    followups = discord_api.followups(asked["token"])
    assert [m["content"][:7] for m in followups] == ["Part 1:", "Part 2:"]
    assert len(discord_api.calls_to("POST", rf"/webhooks/{APPLICATION_ID}/[^/]+")) == 2


async def test_a_channel_answer_taken_over_is_edited_in_place_and_its_extra_parts_deleted(
    discord_api: FakeDiscord, rest: DiscordREST
) -> None:
    address = ReplyAddress("discord", CHANNEL_ID, workspace_id=GUILD_ID)
    replies = ReplyRecord(MemoryCache())
    first = await attempt(rest, address, replies, LONG)
    assert len(discord_api.messages_in(CHANNEL_ID)) == 3

    second = await attempt(rest, address, replies, "Short, this time.")

    (shown,) = discord_api.messages_in(CHANNEL_ID)
    assert shown["content"] == "Short, this time." and shown["components"]  # the buttons
    assert first.placeholder is not None and first.placeholder.startswith(second.placeholder or "?")
    assert len(discord_api.calls_to("POST", rf"/channels/{CHANNEL_ID}/messages")) == 3
    record = await replies.get(JOB)
    assert record is not None and record.message == f"{CHANNEL_ID}/c:{shown['id']}"


async def test_the_fake_dedups_a_create_by_nonce_only_when_enforced(
    discord_api: FakeDiscord,
) -> None:
    path = f"{discord_api.api_url}/channels/{CHANNEL_ID}/messages"
    auth = {"Authorization": f"Bot {discord_api.token}"}
    async with httpx.AsyncClient(headers=auth) as http:

        async def create(**body: object) -> httpx.Response:
            return await http.post(path, json={"content": "hi", **body})

        first = (await create(nonce="n-1", enforce_nonce=True)).json()
        again = (await create(nonce="n-1", enforce_nonce=True)).json()
        unenforced = (await create(nonce="n-1")).json()
        too_long = await create(nonce="x" * 26, enforce_nonce=True)
        fetched = (await http.get(f"{path}/{first['id']}")).json()

    assert first["nonce"] == "n-1" and again["id"] == first["id"]  # the message already made
    assert unenforced["id"] != first["id"]
    assert too_long.status_code == 400 and too_long.json()["code"] == 50035
    assert "nonce" not in fetched  # only a create's response and event carry it
    mine = [m for m in discord_api.messages_in(CHANNEL_ID) if m["author"]["id"] == BOT_ID]
    assert len(mine) == 2


async def test_the_same_last_part_found_by_its_nonce_gets_the_new_runs_buttons(
    discord_api: FakeDiscord, rest: DiscordREST
) -> None:
    """A dead attempt posted the last part (with the feedback buttons) but never recorded it;
    the next one writes the same words: its buttons must carry the run that answered."""
    address = ReplyAddress("discord", CHANNEL_ID, workspace_id=GUILD_ID)
    replies = ReplyRecord(MemoryCache())
    posts = rf"/channels/{CHANNEL_ID}/messages"
    hold = discord_api.hold("POST", posts, lambda c: "Part 2:" in str(c.json))
    first = asyncio.create_task(attempt(rest, address, replies, LONG))
    await until(hold.reached.is_set)
    first.cancel()  # dead before the last part's id is recorded, as after a SIGKILL
    await asyncio.gather(first, return_exceptions=True)
    hold.release()
    await until(lambda: len(discord_api.messages_in(CHANNEL_ID)) == 3)
    buttons_before = str(discord_api.messages_in(CHANNEL_ID)[-1]["components"])

    await attempt(rest, address, replies, LONG)

    shown = discord_api.messages_in(CHANNEL_ID)
    assert [m["content"][:7] for m in shown] == ["Part 0:", "Part 1:", "Part 2:"]
    assert len(discord_api.calls_to("POST", posts)) == 4  # the second attempt's 3rd: deduped
    assert shown[-1]["components"] and str(shown[-1]["components"]) != buttons_before
