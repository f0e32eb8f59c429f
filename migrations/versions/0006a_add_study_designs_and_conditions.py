"""Add study designs and conditions: the study's design, conditions, rotation, probe share and
seed; each enrolment's place in the randomisation; each assignment's condition, probe flag and
initial answer; what each answer showed

Revision ID: 0006a
Revises: 0006
Create Date: 2026-11-28 04:40:00

"""
import json
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006a'
down_revision = '0006'
branch_labels = None
depends_on = None

# The thesis's two conditions, which every study before this migration ran.
THESIS = [
    {"aid": "unaided", "k": 0, "labelled": True, "classifier": "", "saliency": False},
    {"aid": "se_cbir", "k": 6, "labelled": True, "classifier": "", "saliency": False},
]


def upgrade():
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'design', sa.String(length=32), server_default='sequential', nullable=False
        ))
        batch_op.add_column(sa.Column('conditions', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column(
            'rotate_later_sessions', sa.Boolean(), server_default=sa.true(), nullable=False
        ))
        batch_op.add_column(sa.Column(
            'probe_share', sa.Float(), server_default='0', nullable=False
        ))
        batch_op.add_column(sa.Column('seed', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint(
            batch_op.f('ck_study_probe_share_range'), 'probe_share >= 0 AND probe_share <= 0.5'
        )
    study = sa.table(
        'study', sa.column('id', sa.Integer), sa.column('conditions', sa.JSON),
        sa.column('seed', sa.Integer),
    )
    connection = op.get_bind()
    for (study_id,) in connection.execute(sa.select(study.c.id)).all():
        connection.execute(
            study.update().where(study.c.id == study_id).values(
                conditions=json.loads(json.dumps(THESIS)), seed=secrets.randbelow(2**31)
            )
        )
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.alter_column('conditions', existing_type=sa.JSON(), nullable=False)

    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arm_index', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f('uq_enrolment_study_id_arm_index'), ['study_id', 'arm_index']
        )

    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_assignment_task_1_or_2'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_assignment_task_positive'), 'task >= 1')
        batch_op.add_column(sa.Column('condition', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('probe', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('initial_diagnosis', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('initial_confidence', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('initial_at', sa.DateTime(), nullable=True))
    # Task 1 was read unaided (condition 0), Task 2 with SE-CBIR (condition 1).
    op.execute("UPDATE assignment SET condition = task - 1")

    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shown', sa.JSON(), nullable=True))
    # Answers stored before recorded the neighbours only: their condition follows from the task.
    op.execute("UPDATE answer SET shown = '{}'")
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.alter_column('shown', existing_type=sa.JSON(), nullable=False)


def downgrade():
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_column('shown')
    op.execute("DELETE FROM answer WHERE assignment_id IN (SELECT id FROM assignment WHERE task > 2)")
    op.execute("DELETE FROM assignment WHERE task > 2")
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_column('initial_at')
        batch_op.drop_column('initial_confidence')
        batch_op.drop_column('initial_diagnosis')
        batch_op.drop_column('probe')
        batch_op.drop_column('condition')
        batch_op.drop_constraint(batch_op.f('ck_assignment_task_positive'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_assignment_task_1_or_2'), 'task IN (1, 2)')
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_enrolment_study_id_arm_index'), type_='unique')
        batch_op.drop_column('arm_index')
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_study_probe_share_range'), type_='check')
        batch_op.drop_column('seed')
        batch_op.drop_column('probe_share')
        batch_op.drop_column('rotate_later_sessions')
        batch_op.drop_column('conditions')
        batch_op.drop_column('design')
