"""Probes retrieved for their own case: class_neighbour holds, per case, retrieval aid and
class, the case's nearest images of that class (the bundle's class_neighbours extension)

Revision ID: class_a
Revises: rename_a
Create Date: 2026-12-07 23:45:00

Studies imported before have none: their probes show another case's genuine list, as before.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'class_a'
down_revision = 'rename_a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('class_neighbour',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('aid', sa.String(length=16), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.String(length=64), nullable=False),
    sa.Column('lesion_id', sa.String(length=64), nullable=False),
    sa.Column('truth', sa.String(length=16), nullable=False),
    sa.Column('similarity', sa.Float(), nullable=False),
    sa.Column('image', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_class_neighbour_case_id_case')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_class_neighbour')),
    sa.UniqueConstraint('case_id', 'aid', 'truth', 'rank', name=op.f('uq_class_neighbour_case_id_aid_truth_rank'))
    )
    with op.batch_alter_table('class_neighbour', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_class_neighbour_case_id'), ['case_id'], unique=False)


def downgrade():
    with op.batch_alter_table('class_neighbour', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_class_neighbour_case_id'))
    op.drop_table('class_neighbour')
