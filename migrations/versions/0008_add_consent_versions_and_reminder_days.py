"""Add consent versions and reminder days

Revision ID: 0008
Revises: i15c
Create Date: 2026-11-28 04:51:00.328636

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = 'i15c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('consent_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_consent_version_created_by_id_user')),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_consent_version_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_version')),
    sa.UniqueConstraint('study_id', 'version', name=op.f('uq_consent_version_study_id_version'))
    )
    op.create_index(op.f('ix_consent_version_study_id'), 'consent_version', ['study_id'], unique=False)
    # Plain ADD COLUMN (no batch copy): on SQLite a copy of study, enrolment or invitation
    # fails once other rows refer to them.
    op.add_column('enrolment', sa.Column('consent_version', sa.Integer(), nullable=True))
    op.add_column('study', sa.Column('consent_version', sa.Integer(), server_default='1', nullable=False))
    op.add_column('study', sa.Column('reminder_days', sa.Integer(), server_default='0', nullable=False))
    # Each study's current text becomes its version 1. Readers who enrolled before keep
    # consent_version NULL: which text they saw was not recorded.
    op.execute(
        "INSERT INTO consent_version (study_id, version, text, created_at) "
        "SELECT id, 1, information, CURRENT_TIMESTAMP FROM study"
    )


def downgrade():
    op.drop_column('study', 'reminder_days')
    op.drop_column('study', 'consent_version')
    op.drop_column('enrolment', 'consent_version')
    op.drop_index(op.f('ix_consent_version_study_id'), table_name='consent_version')
    op.drop_table('consent_version')
