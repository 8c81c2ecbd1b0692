"""Daily token budgets per user and per workspace, counted from the runs in PostgreSQL.

The runs table is the source of truth: every run stores the prompt and completion tokens it
spent, so the count holds across workers and restarts. Before a run starts, the tokens of
the runs started since midnight UTC by the same user, and in the same workspace, are summed
(one statement, two index ranges: ``runs (user_id, started_at)`` and ``runs (workspace_id,
started_at)``, both carrying the token counts);
over either budget, the run ends at once with a message in the language of the question,
saying when the budget renews. A run's tokens count once it is finished, so runs already
under way when the budget is reached finish and may go over it a little.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.agent.run import RunEndedError
from bot.language import in_language_of
from bot.metrics import BUDGET_REFUSALS

__all__ = ["DailyBudget", "Spent", "midnight_utc"]

_SPENT_TODAY = text(
    """
SELECT
  (SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM runs
   WHERE user_id = :user_id AND started_at >= :since) AS user_tokens,
  (SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM runs
   WHERE workspace_id = :workspace_id AND started_at >= :since) AS workspace_tokens
"""
)


def midnight_utc(now: dt.datetime) -> dt.datetime:
    """The start of ``now``'s day in UTC, when the budgets were last renewed."""
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Spent:
    """Tokens spent today by one user and in one workspace."""

    user: int
    workspace: int


class DailyBudget:
    """The daily limits (None: unlimited) and the query that checks them."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        per_user: int | None,
        per_workspace: int | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.engine = engine
        self.per_user = per_user
        self.per_workspace = per_workspace
        self.clock = clock

    async def spent(self, user_id: str | None, workspace_id: str | None) -> Spent:
        """Tokens of the runs started today (UTC) by ``user_id`` and in ``workspace_id``."""
        values = {
            "user_id": user_id,
            "workspace_id": workspace_id,
            "since": midnight_utc(self.clock()),
        }
        async with self.engine.connect() as conn:
            row = (await conn.execute(_SPENT_TODAY, values)).one()
        return Spent(int(row.user_tokens), int(row.workspace_tokens))

    async def refusal(
        self, user_id: str | None, workspace_id: str | None, question: str
    ) -> RunEndedError | None:
        """Why a run for this user and workspace may not start today, or None if it may."""
        user_id = user_id if self.per_user is not None else None
        workspace_id = workspace_id if self.per_workspace is not None else None
        if user_id is None and workspace_id is None:
            return None
        spent = await self.spent(user_id, workspace_id)
        if self.per_user is not None and user_id is not None and spent.user >= self.per_user:
            return self._refuse("user", self.per_user, spent.user, question)
        if (
            self.per_workspace is not None
            and workspace_id is not None
            and spent.workspace >= self.per_workspace
        ):
            return self._refuse("workspace", self.per_workspace, spent.workspace, question)
        return None

    def _refuse(
        self, scope: Literal["user", "workspace"], limit: int, spent: int, question: str
    ) -> RunEndedError:
        BUDGET_REFUSALS.labels(scope).inc()
        now = self.clock()
        left = midnight_utc(now) + dt.timedelta(days=1) - now
        hours, minutes = divmod(max(1, int(left.total_seconds() // 60)), 60)
        if scope == "user":
            english = f"You have used today's allowance of {limit:,} tokens"
            korean = f"오늘 쓸 수 있는 토큰 {limit:,}개를 모두 쓰셨습니다"
        else:
            english = f"This workspace has used today's allowance of {limit:,} tokens"
            korean = f"이 워크스페이스가 오늘 쓸 수 있는 토큰 {limit:,}개를 모두 썼습니다"
        message = in_language_of(
            question,
            f"{english}. It renews at midnight UTC, in {hours} h {minutes} min.",
            f"{korean}. UTC 자정에 다시 채워집니다 ({hours}시간 {minutes}분 뒤).",
        )
        error = f"daily token budget per {scope} spent ({spent} of {limit})"
        return RunEndedError("failed", message, error)
