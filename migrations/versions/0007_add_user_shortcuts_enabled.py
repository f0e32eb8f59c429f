"""Add user.shortcuts_enabled: a reader may turn the survey's single-key shortcuts off

Revision ID: 0007
Revises: 0006a
Create Date: 2026-11-28 04:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006a'
branch_labels = None
depends_on = None


def upgrade():
    # Every existing account keeps the shortcuts it had (on). A plain ADD COLUMN, also on
    # SQLite: a batch copy of "user" would fail on the rows that refer to it.
    op.add_column(
        'user',
        sa.Column('shortcuts_enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('shortcuts_enabled')
