"""Column helpers for every package's tables (lowest layer: bot and tools import it too)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from sqlalchemy import DateTime, MetaData, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import mapped_column

__all__ = ["NAMING_CONVENTION", "CreatedAt", "JsonDict", "UuidPk", "new_metadata"]

# Stable constraint names, so migrations written today still match the models tomorrow.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A MetaData with the project's naming convention (one per package)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


UuidPk = Annotated[
    uuid.UUID,
    mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
]
CreatedAt = Annotated[
    dt.datetime,
    mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False),
]
JsonDict = Annotated[
    dict[str, Any],
    mapped_column(JSONB, server_default=text("'{}'::jsonb"), nullable=False),
]
