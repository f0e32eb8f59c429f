"""Add the reader's profile to enrolments and the hidden time to answers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 04:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    # Enrolments made before stay without a profile (NULL): nobody was asked.
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'profile_role',
            sa.Enum('DERMATOLOGIST', 'RESIDENT', 'GENERAL_PRACTITIONER', 'OTHER',
                    name='readerrole', native_enum=False, length=32),
            nullable=True,
        ))
        batch_op.add_column(sa.Column('profile_years', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('profile_exams_per_week', sa.Integer(), nullable=True))
    # Answers stored before measured no hidden time: 0, so time on case stays their seconds.
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('hidden_seconds', sa.Float(), server_default='0', nullable=False)
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_answer_hidden_not_negative'), 'hidden_seconds >= 0'
        )


def downgrade():
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_answer_hidden_not_negative'), type_='check')
        batch_op.drop_column('hidden_seconds')
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.drop_column('profile_exams_per_week')
        batch_op.drop_column('profile_years')
        batch_op.drop_column('profile_role')
