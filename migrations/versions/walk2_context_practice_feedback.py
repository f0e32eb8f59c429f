"""Case context, a practice set and feedback at the end: case.context and answer.context
(age, sex and body site), study.practice_cases and study.feedback, and session 0 (practice)
allowed for assignments

Revision ID: walk2
Revises: report_a
Create Date: 2026-12-07 14:20:00

Existing studies keep what they had: no practice cases, no feedback, no context.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'walk2'
down_revision = 'report_a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.add_column(sa.Column('practice_cases', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('feedback', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_check_constraint(
            batch_op.f('ck_study_practice_cases_not_negative'), 'practice_cases >= 0'
        )
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context', sa.JSON(), nullable=True))
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context', sa.JSON(), nullable=True))
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_assignment_task_positive'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_assignment_task_not_negative'), 'task >= 0')


def downgrade():
    op.execute("DELETE FROM answer WHERE assignment_id IN (SELECT id FROM assignment WHERE task = 0)")
    op.execute("DELETE FROM assignment WHERE task = 0")
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_assignment_task_not_negative'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_assignment_task_positive'), 'task >= 1')
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_column('context')
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_column('context')
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_study_practice_cases_not_negative'), type_='check')
        batch_op.drop_column('feedback')
        batch_op.drop_column('practice_cases')
