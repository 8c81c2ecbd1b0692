"""Indexes for the daily token budgets: today's runs of a user, and of every workspace.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKENS = ['prompt_tokens', 'completion_tokens']


def upgrade() -> None:
    op.create_index(
        'ix_runs_user_id_started_at',
        'runs',
        ['user_id', 'started_at'],
        postgresql_include=_TOKENS,
    )
    op.create_index(
        'ix_runs_started_at', 'runs', ['started_at'], postgresql_include=['thread_id', *_TOKENS]
    )


def downgrade() -> None:
    op.drop_index('ix_runs_started_at', table_name='runs')
    op.drop_index('ix_runs_user_id_started_at', table_name='runs')
