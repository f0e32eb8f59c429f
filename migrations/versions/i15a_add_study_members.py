"""Add study_member: organisers see only the studies they own or collaborate on

Revision ID: i15a
Revises: 0007
Create Date: 2026-11-28 04:20:00

Existing studies keep the organisers who ran them: whoever imported a study (study.created_by)
becomes its owner, every other organiser who created an invitation to it a collaborator. A
study with neither (imported from the command line, never invited to) is left to admins, who
hand it over with `flask study add-member STUDY EMAIL --owner`.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'i15a'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('study_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.Boolean(), nullable=False),
    sa.Column('added_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_study_member_study_id_study')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_study_member_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_member')),
    sa.UniqueConstraint('study_id', 'user_id', name=op.f('uq_study_member_study_id_user_id'))
    )
    with op.batch_alter_table('study_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_member_study_id'), ['study_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_study_member_user_id'), ['user_id'], unique=False)

    staff = "('ORGANISER', 'ADMIN')"  # the enum's names, as stored
    op.execute(
        "INSERT INTO study_member (study_id, user_id, owner, added_at) "
        "SELECT study.id, study.created_by_id, TRUE, CURRENT_TIMESTAMP FROM study "
        '    JOIN "user" ON "user".id = study.created_by_id '
        f'    WHERE "user".role IN {staff}'
    )
    op.execute(
        "INSERT INTO study_member (study_id, user_id, owner, added_at) "
        "SELECT DISTINCT invitation.study_id, invitation.created_by_id, FALSE, CURRENT_TIMESTAMP "
        '    FROM invitation JOIN "user" ON "user".id = invitation.created_by_id '
        f'    WHERE "user".role IN {staff} AND NOT EXISTS ('
        "        SELECT 1 FROM study_member WHERE study_member.study_id = invitation.study_id "
        "        AND study_member.user_id = invitation.created_by_id)"
    )


def downgrade():
    with op.batch_alter_table('study_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_member_user_id'))
        batch_op.drop_index(batch_op.f('ix_study_member_study_id'))
    op.drop_table('study_member')
