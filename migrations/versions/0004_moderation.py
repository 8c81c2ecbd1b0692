"""Moderation: a policy's mode, ladder and channels; an event's strikes, mode and outcome;
strikes per member; one appeal per event with the reviewer's reason; why in the audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 00:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIONS = "('none', 'log', 'warn', 'delete', 'timeout', 'kick', 'ban')"
_MODES = "('shadow', 'enforce')"
_EMPTY_LIST = sa.text("'[]'::jsonb")


def _jsonb() -> postgresql.JSONB:
    return postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    _upgrade_policies()
    _upgrade_events()
    op.create_table('moderation_strikes',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('guild_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['moderation_events.id'], name=op.f('fk_moderation_strikes_event_id_moderation_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_strikes')),
    sa.UniqueConstraint('event_id', name=op.f('uq_moderation_strikes_event_id'))
    )
    op.create_index('ix_moderation_strikes_guild_id_user_id', 'moderation_strikes', ['guild_id', 'user_id', 'created_at'], unique=False)
    # One appeal per event: the unique constraint replaces the plain index.
    op.drop_index(op.f('ix_appeals_event_id'), table_name='appeals')
    op.create_unique_constraint(op.f('uq_appeals_event_id'), 'appeals', ['event_id'])
    op.add_column('appeals', sa.Column('review_reason', sa.Text(), server_default='', nullable=False))
    op.add_column('audit_log', sa.Column('reason', sa.Text(), server_default='', nullable=False))
    op.add_column('audit_log', sa.Column('guild_id', sa.String(length=64), nullable=True))


def _upgrade_policies() -> None:
    # Thresholds are now {label: {action: score}}; the separate actions map is gone.
    op.drop_column('moderation_policies', 'actions')
    op.add_column('moderation_policies', sa.Column('mode', sa.String(length=16), server_default='shadow', nullable=False))
    op.add_column('moderation_policies', sa.Column('ladder', _jsonb(), server_default=_EMPTY_LIST, nullable=False))
    op.add_column('moderation_policies', sa.Column('strike_window_days', sa.Integer(), server_default='30', nullable=False))
    op.add_column('moderation_policies', sa.Column('timeout_minutes', sa.Integer(), server_default='60', nullable=False))
    op.add_column('moderation_policies', sa.Column('exempt_roles', _jsonb(), server_default=_EMPTY_LIST, nullable=False))
    op.add_column('moderation_policies', sa.Column('exempt_channels', _jsonb(), server_default=_EMPTY_LIST, nullable=False))
    op.add_column('moderation_policies', sa.Column('channels', _jsonb(), nullable=True))
    op.create_check_constraint(op.f('ck_moderation_policies_mode'), 'moderation_policies', f"mode IN {_MODES}")


def _upgrade_events() -> None:
    op.add_column('moderation_events', sa.Column('threshold_action', sa.String(length=32), server_default='none', nullable=False))
    op.add_column('moderation_events', sa.Column('timeout_minutes', sa.Integer(), nullable=True))
    op.add_column('moderation_events', sa.Column('strikes', sa.Integer(), server_default='0', nullable=False))
    op.add_column('moderation_events', sa.Column('mode', sa.String(length=16), server_default='shadow', nullable=False))
    op.add_column('moderation_events', sa.Column('enforced', sa.Boolean(), server_default='false', nullable=False))
    op.add_column('moderation_events', sa.Column('log_message_id', sa.String(length=64), nullable=True))
    op.add_column('moderation_events', sa.Column('overturned_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('moderation_events', sa.Column('overturned_by', sa.String(length=200), nullable=True))
    op.create_index('ix_moderation_events_guild_id_author_id', 'moderation_events', ['guild_id', 'author_id'], unique=False)
    op.create_check_constraint(op.f('ck_moderation_events_action'), 'moderation_events', f"action IN {_ACTIONS}")
    op.create_check_constraint(op.f('ck_moderation_events_threshold_action'), 'moderation_events', f"threshold_action IN {_ACTIONS}")
    op.create_check_constraint(op.f('ck_moderation_events_mode'), 'moderation_events', f"mode IN {_MODES}")


def downgrade() -> None:
    op.drop_column('audit_log', 'guild_id')
    op.drop_column('audit_log', 'reason')
    op.drop_column('appeals', 'review_reason')
    op.drop_constraint(op.f('uq_appeals_event_id'), 'appeals', type_='unique')
    op.create_index(op.f('ix_appeals_event_id'), 'appeals', ['event_id'], unique=False)
    op.drop_index('ix_moderation_strikes_guild_id_user_id', table_name='moderation_strikes')
    op.drop_table('moderation_strikes')
    for name in ('mode', 'threshold_action', 'action'):
        op.drop_constraint(op.f(f'ck_moderation_events_{name}'), 'moderation_events', type_='check')
    op.drop_index('ix_moderation_events_guild_id_author_id', table_name='moderation_events')
    for column in ('overturned_by', 'overturned_at', 'log_message_id', 'enforced', 'mode',
                   'strikes', 'timeout_minutes', 'threshold_action'):
        op.drop_column('moderation_events', column)
    op.drop_constraint(op.f('ck_moderation_policies_mode'), 'moderation_policies', type_='check')
    for column in ('channels', 'exempt_channels', 'exempt_roles', 'timeout_minutes',
                   'strike_window_days', 'ladder', 'mode'):
        op.drop_column('moderation_policies', column)
    op.add_column('moderation_policies', sa.Column('actions', _jsonb(), server_default=sa.text("'{}'::jsonb"), nullable=False))
