"""Add login_failure.email_hash: lock an e-mail address after failed logins, known or not

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 00:42:21

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # Failures recorded before count against their network address only, and a lock kept in
    # user.locked_until is no longer read: at most one 15-minute lock is forgotten.
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_login_failure_email_hash'), ['email_hash'], unique=False
        )


def downgrade():
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failure_email_hash'))
        batch_op.drop_column('email_hash')
