"""Runs carry their thread's workspace, so a workspace's daily token budget is one index
range, not a join over every run of the day.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('workspace_id', sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE runs SET workspace_id = threads.workspace_id FROM threads "
        "WHERE threads.id = runs.thread_id AND threads.workspace_id IS NOT NULL"
    )
    op.create_index(
        'ix_runs_workspace_id_started_at',
        'runs',
        ['workspace_id', 'started_at'],
        postgresql_include=['prompt_tokens', 'completion_tokens'],
    )
    op.drop_index('ix_runs_started_at', table_name='runs')


def downgrade() -> None:
    op.create_index(
        'ix_runs_started_at',
        'runs',
        ['started_at'],
        postgresql_include=['thread_id', 'prompt_tokens', 'completion_tokens'],
    )
    op.drop_index('ix_runs_workspace_id_started_at', table_name='runs')
    op.drop_column('runs', 'workspace_id')
