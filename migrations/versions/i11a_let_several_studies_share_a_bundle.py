"""Let several studies share one bundle: the bundle digest is indexed, no longer unique

Revision ID: i11a
Revises: i10a
Create Date: 2026-11-28 08:10:00

An organiser runs a second study on the same cases (another design, another group of
readers) by copying a study; the copy keeps the bundle's digest and image folder. Importing
the same bundle again still returns the first study of that digest (app.bundle.import_bundle).
Downgrade fails while two studies share a digest: delete or re-import the copy first.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'i11a'
down_revision = 'i10a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_study_bundle_digest'), type_='unique')
        batch_op.create_index(batch_op.f('ix_study_bundle_digest'), ['bundle_digest'], unique=False)


def downgrade():
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_bundle_digest'))
        batch_op.create_unique_constraint(batch_op.f('uq_study_bundle_digest'), ['bundle_digest'])
