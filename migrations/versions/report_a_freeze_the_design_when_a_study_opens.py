"""Add design_freeze: a study's design as canonical JSON with its SHA-256, written when the study first opens

Revision ID: report_a
Revises: sec_import
Create Date: 2026-12-07 14:10:00

Studies opened before this revision have no frozen design: their pages say so, and nothing
is made up for them after the fact.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'report_a'
down_revision = 'sec_import'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('design_freeze',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('frozen_at', sa.DateTime(), nullable=False),
    sa.Column('design', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('seed_salt', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_design_freeze_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_design_freeze')),
    sa.UniqueConstraint('study_id', name=op.f('uq_design_freeze_study_id'))
    )


def downgrade():
    op.drop_table('design_freeze')
