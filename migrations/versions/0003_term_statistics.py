"""Document frequencies per collection and term, so BM25 reads them with one lookup,
with the largest term frequency and shortest chunk per term (bounds for pruning).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 12:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('term_statistics',
    sa.Column('collection_id', sa.UUID(), nullable=False),
    sa.Column('term', sa.Text(), nullable=False),
    sa.Column('df', sa.BigInteger(), nullable=False),
    sa.Column('max_tf', sa.Integer(), nullable=False),
    sa.Column('min_len', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_term_statistics_collection_id_collections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('collection_id', 'term', name=op.f('pk_term_statistics'))
    )
    # Existing chunks: count each lexeme once per chunk, as the store does on every write.
    op.execute(
        "INSERT INTO term_statistics (collection_id, term, df, max_tf, min_len) "
        "SELECT c.collection_id, u.lexeme, count(*), max(cardinality(u.positions)), "
        "min(c.lexical_len) "
        "FROM chunks c CROSS JOIN LATERAL unnest(c.lexical) AS u "
        "GROUP BY c.collection_id, u.lexeme"
    )


def downgrade() -> None:
    op.drop_table('term_statistics')
