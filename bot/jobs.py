"""The job kinds this release knows, and the handlers that process them.

Adapters enqueue jobs by kind; :func:`job_handlers` maps each kind to its handler for the
worker. Kinds arrive with the features that need them (``answer`` with the agent,
``ingest`` with admin uploads); a job of an unknown kind is dead-lettered at once.
"""

from __future__ import annotations

from bot.settings import Settings
from bot.state import SharedState
from bot.storage import Database
from bot.worker import Handler

__all__ = ["job_handlers"]


def job_handlers(settings: Settings, database: Database, state: SharedState) -> dict[str, Handler]:
    """Every handler this release has, keyed by job kind."""
    del settings, database, state  # used by the handlers the next features register
    return {}
