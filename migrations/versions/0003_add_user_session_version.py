"""Add user.session_version: logging out or a new password ends every session, copies too

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:32:50

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # Existing rows get 0. Sessions issued before this carry a bare id, which the app no
    # longer accepts: everyone logs in once more after the upgrade.
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_version', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('session_version')
