"""Probes that look like real aids: assignment gets probe_class (the wrong class a probe points to, drawn at enrolment) and probe_source (the case whose genuine aid it shows)

Revision ID: probes_a
Revises: walk1
Create Date: 2026-12-07 14:30:00

Existing probes keep both empty: they are shown as before they were drawn this way (the case's
own list with its majority moved to the aid's best-ranked wrong class).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'probes_a'
down_revision = 'walk1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('probe_class', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('probe_source', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_column('probe_source')
        batch_op.drop_column('probe_class')
