"""Cap imports atomically and name each import's process: import_job gets slot, pid and host, and two unique partial indexes over the unfinished jobs (one per organiser; one per slot)

Revision ID: sec_import
Revises: i15d
Create Date: 2026-12-02 09:00:00

Jobs unfinished at upgrade time ran in threads of the old web workers, which the upgrade's
restart ended: they are marked failed first, so that the new indexes hold and nobody waits
for them.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'sec_import'
down_revision = 'i15d'
branch_labels = None
depends_on = None

UNFINISHED = sa.text("state IN ('queued', 'running')")
STOPPED = (
    "The import stopped without finishing (the server was upgraded). Nothing was imported: "
    "please upload the bundle again."
)


def upgrade():
    op.execute(
        sa.text(
            "UPDATE import_job SET state = 'failed', errors = :errors "
            "WHERE state IN ('queued', 'running')"
        ).bindparams(errors=STOPPED)
    )
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slot', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('host', sa.String(length=255), nullable=True))
        batch_op.create_index(
            'uq_import_job_unfinished_created_by_id', ['created_by_id'], unique=True,
            sqlite_where=UNFINISHED, postgresql_where=UNFINISHED,
        )
        batch_op.create_index(
            'uq_import_job_unfinished_slot', ['slot'], unique=True,
            sqlite_where=UNFINISHED, postgresql_where=UNFINISHED,
        )


def downgrade():
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.drop_index('uq_import_job_unfinished_slot')
        batch_op.drop_index('uq_import_job_unfinished_created_by_id')
        batch_op.drop_column('host')
        batch_op.drop_column('pid')
        batch_op.drop_column('slot')
