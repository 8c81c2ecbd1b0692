"""Chunks keep what the model read when it is not their content (a table's rows with the
headers once), so that reindexing embeds the same text; NULL: the content, as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('chunks', sa.Column('embed_text', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('chunks', 'embed_text')
