"""Columns named for what they hold: assignment.task -> session, enrolment.task1_completed_at
-> first_session_done_at, enrolment.task2_completed_at -> finished_at, study.reshuffle_task2 ->
reshuffle_later_sessions; the assignment constraints named after `task` follow

Revision ID: rename_a
Revises: probes_a
Create Date: 2026-12-07 18:30:00

Renames only: every value stays. The exports keep their `task` column, and a frozen design
its `reshuffle_later_sessions` key (both were never the column's name).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'rename_a'
down_revision = 'probes_a'
branch_labels = None
depends_on = None


def rename_assignment_session(old: str, new: str) -> None:
    """assignment.<old> -> <new>, with the constraints whose names (and check) spell it.

    The constraints go before the rename and come back after it, under the names the
    naming convention gives them: SQLite's table copy would otherwise keep the check's old
    text, and PostgreSQL the old names.
    """
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(f'ck_assignment_{old}_not_negative'), type_='check')
        batch_op.drop_constraint(
            batch_op.f(f'uq_assignment_enrolment_id_{old}_position'), type_='unique'
        )
        batch_op.drop_constraint(
            batch_op.f(f'uq_assignment_enrolment_id_{old}_case_id'), type_='unique'
        )
        batch_op.alter_column(
            old, new_column_name=new, existing_type=sa.Integer(), existing_nullable=False
        )
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f(f'uq_assignment_enrolment_id_{new}_position'),
            ['enrolment_id', new, 'position'],
        )
        batch_op.create_unique_constraint(
            batch_op.f(f'uq_assignment_enrolment_id_{new}_case_id'),
            ['enrolment_id', new, 'case_id'],
        )
        batch_op.create_check_constraint(
            batch_op.f(f'ck_assignment_{new}_not_negative'), f'{new} >= 0'
        )


def rename_enrolment_and_study(enrolment: dict, study: dict) -> None:
    """Plain column renames (old name -> new name), nothing refers to these columns by name."""
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        for old, new in enrolment.items():
            batch_op.alter_column(
                old, new_column_name=new, existing_type=sa.DateTime(), existing_nullable=True
            )
    with op.batch_alter_table('study', schema=None) as batch_op:
        for old, new in study.items():
            batch_op.alter_column(
                old, new_column_name=new, existing_type=sa.Boolean(), existing_nullable=False
            )


ENROLMENT = {'task1_completed_at': 'first_session_done_at', 'task2_completed_at': 'finished_at'}
STUDY = {'reshuffle_task2': 'reshuffle_later_sessions'}


def upgrade():
    rename_assignment_session('task', 'session')
    rename_enrolment_and_study(ENROLMENT, STUDY)


def downgrade():
    rename_enrolment_and_study(
        {new: old for old, new in ENROLMENT.items()}, {new: old for old, new in STUDY.items()}
    )
    rename_assignment_session('session', 'task')
