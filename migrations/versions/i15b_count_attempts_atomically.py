"""Replace login_failure by attempt_counter: limits counted by one atomic upsert per attempt

Revision ID: i15b
Revises: i15a
Create Date: 2026-11-28 04:40:00

The failures of the last 15 minutes are dropped with the old table: at most one lock or one
network count of that age is forgotten on upgrade.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'i15b'
down_revision = 'i15a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('attempt_counter',
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_attempt_counter'))
    )
    with op.batch_alter_table('attempt_counter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempt_counter_started_at'), ['started_at'], unique=False)
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failure_email_hash'))
        batch_op.drop_index(batch_op.f('ix_login_failure_ip'))
        batch_op.drop_index(batch_op.f('ix_login_failure_at'))
    op.drop_table('login_failure')


def downgrade():
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failure_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failure_ip'), ['ip'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failure_email_hash'), ['email_hash'], unique=False)
    with op.batch_alter_table('attempt_counter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempt_counter_started_at'))
    op.drop_table('attempt_counter')
