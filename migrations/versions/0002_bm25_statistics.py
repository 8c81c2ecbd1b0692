"""BM25 statistics per collection and chunk; content hashes for reuse across versions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 07:46:56.942523
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('chunks', sa.Column('content_hash', sa.String(length=64), server_default='', nullable=False))
    op.add_column('chunks', sa.Column('lexical_len', sa.Integer(), server_default='0', nullable=False))
    op.add_column('collections', sa.Column('chunk_count', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('collections', sa.Column('lexical_terms', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('collections', 'lexical_terms')
    op.drop_column('collections', 'chunk_count')
    op.drop_column('chunks', 'lexical_len')
    op.drop_column('chunks', 'content_hash')
