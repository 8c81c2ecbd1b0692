"""The reply record: what a job has shown the user, so a redelivered job never answers twice.

Jobs are at-least-once: a worker that dies between posting an answer and acking its job
leaves the job to be delivered again. Answering is made idempotent by a record per job id in
the shared cache (Redis with ``REDIS_URL``): the placeholder message the answer is being
written into, and whether the answer (or the message saying why there is none) was shown.
A redelivered job that finds its answer shown does nothing; one that finds only a
placeholder finishes that placeholder instead of posting a second one. The intent to post a
placeholder is recorded first: a worker killed between posting it and recording its
reference leaves a record without one, and the next attempt looks the placeholder up on the
platform (it carries the job id) before posting again.

    record = await replies.get(job.id)     # None, or what an earlier attempt showed
    await replies.posting(job.id)           # a placeholder is about to be posted
    await replies.placed(job.id, ts)        # the placeholder is up
    await replies.shown(job.id)             # the answer is up: never again
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.state import Cache

__all__ = ["REPLY_TTL", "PostedReply", "ReplyRecord"]

REPLY_TTL = 7 * 24 * 3600.0
"""How long a job's record is kept: far beyond any redelivery (visibility timeout x attempts)."""


@dataclass(frozen=True)
class PostedReply:
    """What earlier attempts of one job showed: the placeholder's reference, and if done.

    ``message`` None with ``shown`` False: a placeholder was being posted; it may be up.
    """

    message: str | None
    shown: bool


class ReplyRecord:
    """Per-job reply records in a :class:`~bot.state.Cache`."""

    def __init__(self, cache: Cache, *, ttl: float = REPLY_TTL) -> None:
        self.cache = cache
        self.ttl = ttl

    async def get(self, job_id: str) -> PostedReply | None:
        """What earlier attempts of ``job_id`` showed, or None if nothing."""
        raw = await self.cache.get(_key(job_id))
        if raw is None:
            return None
        value = json.loads(raw)
        return PostedReply(message=value.get("message"), shown=bool(value.get("shown")))

    async def posting(self, job_id: str) -> None:
        """A placeholder for this job is about to be posted (look for it if no ts follows)."""
        await self._put(job_id, PostedReply(None, shown=False))

    async def placed(self, job_id: str, message: str) -> None:
        """The placeholder ``message`` (a platform reference) now stands for this job."""
        await self._put(job_id, PostedReply(message, shown=False))

    async def shown(self, job_id: str, message: str | None = None) -> None:
        """The answer (or why there is none) is shown: the job must not answer again."""
        await self._put(job_id, PostedReply(message, shown=True))

    async def _put(self, job_id: str, reply: PostedReply) -> None:
        value = json.dumps({"message": reply.message, "shown": reply.shown}).encode()
        await self.cache.set(_key(job_id), value, ttl=self.ttl)


def _key(job_id: str) -> str:
    return f"reply:{job_id}"
