"""``deskbot moderation ...`` and ``classifier train --extra``, as a user runs them; the
worker's moderation retention chore."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.app import open_app
from bot.jobs import make_worker, moderation_retention
from bot.moderation import Decision, EventDraft, Incoming, ModerationStore, Moderator, Policy
from bot.settings import Settings
from bot.storage import Database
from tests.conftest import CliResult, FreshDatabase
from tests.test_classifier import comment_rows, write_table
from tools.classifier import LocalClassifier

pytestmark = pytest.mark.e2e

Run = Callable[..., CliResult]

TRAIN = ("--text-col", "comments", "--label-col", "hate", "--holdout", "0.25")
# Pest control, not people: a tiny model trained on "X are vermin" calls it hate.
FALSE_POSITIVE = "The vermin in my garden ate the tomatoes"


def _one_line(result: CliResult, code: int, *needles: str) -> None:
    assert result.code == code, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_table(tmp_path / "comments.csv", comment_rows())


def _label(run_cli: Run, text: str) -> str:
    result = run_cli("classify", text, "--json")
    assert result.code == 0, result.stderr
    label: str = json.loads(result.stdout)["label"]
    return label


def test_train_extra_appends_rows(run_cli: Run, data_file: Path, tmp_path: Path) -> None:
    train = ("classifier", "train", "--data", str(data_file), *TRAIN)
    assert run_cli(*train).code == 0
    assert _label(run_cli, FALSE_POSITIVE) == "hate"
    extra = write_table(tmp_path / "fp.csv", [{"text": FALSE_POSITIVE, "label": "none"}])
    result = run_cli(*train, "--extra", str(extra), "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["manifest"]["data_rows"] == 37
    assert _label(run_cli, FALSE_POSITIVE) != "hate"
    spam = write_table(tmp_path / "spam.csv", [{"text": "buy now", "label": "spam"}])
    _one_line(run_cli(*train, "--extra", str(spam)), 2, "spam.csv", "'spam' (1)")
    wrong = write_table(tmp_path / "cols.csv", [{"comments": "x", "hate": "none"}])
    _one_line(run_cli(*train, "--extra", str(wrong)), 2, "no column 'text', 'label'")


# --- policy, events, export, replay -------------------------------------------------------

GUILD = "900"


@pytest.fixture
def db_env(fresh_database: FreshDatabase) -> dict[str, str]:
    return {"DATABASE_URL": fresh_database.url}


@pytest.fixture
def trained(run_cli: Run, data_file: Path, tmp_path: Path) -> Path:
    result = run_cli("classifier", "train", "--data", str(data_file), *TRAIN)
    assert result.code == 0, result.stderr
    return tmp_path / "data" / "classifier"


def _policy(run_cli: Run, env: dict[str, str]) -> dict[str, Any]:
    result = run_cli("moderation", "policy", "show", "--guild", GUILD, "--json", env=env)
    assert result.code == 0, result.stderr
    policy: dict[str, Any] = json.loads(result.stdout)
    return policy


async def test_policy_set_is_validated_saved_and_audited(
    run_cli: Run, db_env: dict[str, str], database: Database
) -> None:
    default = _policy(run_cli, db_env)
    assert default["mode"] == "shadow"
    assert default["thresholds"] == {
        "hate": {"log": 0.4, "delete": 0.45},
        "offensive": {"log": 0.5, "delete": 0.6},
    }
    policy_set = ("moderation", "policy", "set", "--guild", GUILD)
    for bad, needle in [
        ("slur:delete=0.5", "unknown label 'slur'"),
        ("hate:nuke=0.5", "unknown action 'nuke'"),
        ("hate:delete=1.5", "from 0 to 1"),
        ("hate=0.5", "LABEL:ACTION=SCORE"),
    ]:
        _one_line(run_cli(*policy_set, "--threshold", bad, env=db_env), 2, needle)
    _one_line(run_cli(*policy_set, env=db_env), 2, "nothing to change")
    assert _policy(run_cli, db_env) == default
    changed = run_cli(
        *policy_set,
        *("--mode", "enforce", "--log-channel", "77"),
        *("--threshold", "hate:delete=0.85", "--threshold", "offensive:log=off"),
        *("--threshold", "hate:timeout=0.95", "--exempt-role", "5", "--exempt-channel", "6"),
        env=db_env,
    )
    assert changed.code == 0, changed.stderr
    assert "mode: enforce" in changed.stdout
    policy = _policy(run_cli, db_env)
    assert policy["mode"] == "enforce"
    assert policy["log_channel_id"] == "77"
    assert policy["thresholds"] == {
        "hate": {"log": 0.4, "delete": 0.85, "timeout": 0.95},
        "offensive": {"delete": 0.6},
    }
    assert (policy["exempt_roles"], policy["exempt_channels"]) == (["5"], ["6"])
    audit = await ModerationStore(database.engine).audit_rows(GUILD)
    assert [(row["actor"], row["action"]) for row in audit] == [("cli", "moderation.policy")]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


async def _moderate(database: Database, model: Path, text: str, message_id: str) -> Decision:
    store = ModerationStore(database.engine)
    classifier = LocalClassifier.load(model)
    message = Incoming(GUILD, "10", message_id, "42", text)
    decision = await Moderator(classifier, store).moderate(message)
    assert decision is not None
    return decision


async def test_an_accepted_appeal_is_exported_and_retrained_away(
    run_cli: Run, db_env: dict[str, str], database: Database, trained: Path, data_file: Path
) -> None:
    enforce = ("--mode", "enforce", "--threshold", "hate:delete=0.35")
    assert run_cli("moderation", "policy", "set", "--guild", GUILD, *enforce, env=db_env).code == 0
    decision = await _moderate(database, trained, FALSE_POSITIVE, "1")
    assert (decision.label, decision.action, decision.enforced) == ("hate", "delete", True)
    store = ModerationStore(database.engine)
    appeal = await store.open_appeal(decision.event_id, author_id="42", reason="about my garden")
    await store.decide_appeal(appeal.id, reviewer_id="7", accept=True)
    out = str(trained.parent.parent / "false_positives.csv")
    exported = run_cli("moderation", "export", "--appeals", "accepted", "--out", out, env=db_env)
    assert exported.code == 0, exported.stderr
    assert "wrote 1 accepted appeals" in exported.stdout
    assert _rows(Path(out)) == [{"text": FALSE_POSITIVE, "label": "none"}]
    train = ("classifier", "train", "--data", str(data_file), *TRAIN, "--extra", out)
    assert run_cli(*train).code == 0
    assert _label(run_cli, FALSE_POSITIVE) != "hate"
    again = await Moderator(LocalClassifier.load(trained), store).moderate(
        Incoming(GUILD, "10", "2", "42", FALSE_POSITIVE)
    )
    assert again is None or again.action != "delete"


async def test_events_lists_decisions_since(
    run_cli: Run, db_env: dict[str, str], database: Database, trained: Path
) -> None:
    decision = await _moderate(database, trained, "Immigrants are vermin, throw them out", "3")
    events = ("moderation", "events", "--guild", GUILD)
    listed = run_cli(*events, "--since", "1", "--json", env=db_env)
    assert listed.code == 0, listed.stderr
    (event,) = json.loads(listed.stdout)
    assert event["id"] == str(decision.event_id)
    assert (event["label"], event["mode"], event["enforced"]) == ("hate", "shadow", False)
    later = run_cli(*events, "--since", "2999-01-01", "--json", env=db_env)
    assert json.loads(later.stdout) == []
    table = run_cli(*events, env=db_env)
    assert table.code == 0 and "1 decisions" in table.stdout and "vermin" in table.stdout
    _one_line(run_cli(*events, "--since", "last week", env=db_env), 2, "--since 'last week'")


@pytest.mark.usefixtures("trained")
def test_replay_scores_each_action_against_the_labels(
    run_cli: Run, db_env: dict[str, str], data_file: Path
) -> None:
    replay = ("moderation", "replay", "--guild", GUILD, "--data", str(data_file))
    plain = run_cli(*replay, "--text-col", "comments", "--json", env=db_env)
    assert plain.code == 0, plain.stderr
    counts = json.loads(plain.stdout)
    assert counts["total"] == 36
    assert sum(counts["counts"].values()) == 36
    assert not counts.get("scores")
    # A model trained on 36 comments is never sure: the guild's own thresholds are replayed.
    low = ("--threshold", "hate:delete=0.4", "--threshold", "offensive:delete=0.4")
    assert run_cli("moderation", "policy", "set", "--guild", GUILD, *low, env=db_env).code == 0
    labelled = ("--text-col", "comments", "--label-col", "hate")
    report = json.loads(run_cli(*replay, *labelled, "--json", env=db_env).stdout)
    assert report["policy"]["thresholds"]["hate"]["delete"] == 0.4
    delete, enforced = report["scores"]["delete"], report["scores"]["enforced"]
    assert delete["gold"] == enforced["gold"] == 24
    assert 0.5 < delete["recall"] <= enforced["recall"] <= 1
    assert delete["precision"] > 0.8
    table = run_cli(*replay, *labelled, env=db_env)
    assert "precision" in table.stdout and "delete" in table.stdout
    _one_line(run_cli(*replay, "--text-col", "text", env=db_env), 2, "no column 'text'")


# --- retention ---------------------------------------------------------------------------

DAY = dt.timedelta(days=1)
MINUTE = dt.timedelta(minutes=1)


class Clock:
    """The store's clock, moved by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _member_history(store: ModerationStore, author: str, message_id: str) -> uuid.UUID:
    """Every kind of row kept about a member: an enforced delete (event, strike, audit), an
    accepted appeal (appeal, two audit rows) and a moderator's timeout (audit)."""
    enforce = dataclasses.replace(Policy.default(GUILD), mode="enforce")
    scores = {"hate": 0.9, "offensive": 0.05, "none": 0.05}
    draft = EventDraft(GUILD, "10", message_id, author, "hate", scores, "local", "delete", "vile")
    event_id, _ = await store.record_decision(draft, enforce)
    appeal = await store.open_appeal(event_id, author_id=author, reason="it was a quote")
    await store.decide_appeal(appeal.id, reviewer_id="7", accept=True)
    await store.record_action(event_id, actor="7", action="timeout", minutes=60)
    return event_id


async def _strikes_of(database: Database) -> list[str]:
    async with database.engine.connect() as conn:
        rows = await conn.execute(text("SELECT user_id FROM moderation_strikes ORDER BY user_id"))
        return [row[0] for row in rows]


async def test_purge_deletes_everything_about_members_past_the_retention(
    run_cli: Run, db_env: dict[str, str], database: Database
) -> None:
    old = ModerationStore(database.engine, clock=lambda: _now() - 100 * DAY)
    await old.save_policy(dataclasses.replace(Policy.default(GUILD), mode="enforce"), actor="mod")
    await _member_history(old, "42", "1")
    await _member_history(ModerationStore(database.engine), "43", "2")
    result = run_cli("moderation", "purge", "--days", "90", "--json", env=db_env)
    assert result.code == 0, result.stderr
    counts = {"events": 1, "strikes": 1, "appeals": 1, "audit": 4}
    assert json.loads(result.stdout) == {"retention_days": 90, **counts}
    store = ModerationStore(database.engine)
    assert [e.author_id for e in await store.events(GUILD)] == ["43"]
    assert [a.author_id for a in await store.appeals(GUILD)] == ["43"]
    assert await _strikes_of(database) == ["43"]
    audit = await store.audit_rows(GUILD)
    assert {row["target"] for row in audit} == {"user:43", f"guild:{GUILD}"}
    assert [row["action"] for row in audit if row["actor"] == "mod"] == ["moderation.policy"]
    # Without --days, DESKBOT_MODERATION_RETENTION_DAYS; the recent history is kept.
    again = run_cli("moderation", "purge", env=db_env | {"DESKBOT_MODERATION_RETENTION_DAYS": "1"})
    assert again.code == 0, again.stderr
    assert again.stdout.strip() == (
        "removed what was older than 1 days: 0 events, 0 strikes, 0 appeals, 0 audit"
    )
    assert [e.author_id for e in await store.events(GUILD)] == ["43"]
    refused = run_cli("moderation", "purge", "--days", "0", env=db_env)
    assert refused.code == 2 and "--days" in refused.stderr


async def test_the_retention_chore_purges_at_most_once_an_hour(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.jobs")
    clock = Clock(dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC))
    store = ModerationStore(database.engine, clock=clock)
    chore = moderation_retention(store, 90)
    await _member_history(store, "42", "1")
    clock.now += 91 * DAY
    await chore()
    assert await store.events(GUILD) == []
    assert await _strikes_of(database) == []
    assert "removed 1 event(s), 1 strike(s), 1 appeal(s), 4 audit row(s)" in caplog.text
    behind = ModerationStore(database.engine, clock=lambda: clock.now - 91 * DAY)
    await _member_history(behind, "43", "2")
    clock.now += 59 * MINUTE
    await chore()  # the last purge was 59 minutes ago
    assert len(await store.events(GUILD)) == 1
    clock.now += MINUTE
    await chore()
    assert await store.events(GUILD) == []
    assert caplog.text.count("moderation retention (90 days): removed 1 event(s)") == 2


@pytest.mark.integration
async def test_the_worker_purges_on_its_own(
    make_settings: Callable[..., Settings], fresh_database: FreshDatabase
) -> None:
    settings = make_settings(database_url=fresh_database.url, moderation_retention_days=30)
    async with open_app(settings) as app:
        await _member_history(
            ModerationStore(app.database.engine, clock=lambda: _now() - 31 * DAY), "42", "1"
        )
        store = ModerationStore(app.database.engine)
        stop = asyncio.Event()
        worker = asyncio.create_task(make_worker(app).run(stop))
        try:
            deadline = asyncio.get_running_loop().time() + 10
            while await store.events(GUILD):
                assert asyncio.get_running_loop().time() < deadline, "the old event stayed"
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(worker, 10)
