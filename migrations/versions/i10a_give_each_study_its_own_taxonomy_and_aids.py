"""Give each study its own taxonomy, Likert labels and aids (bundle format 2)

The answer table no longer hard-codes HAM10000's seven codes: each study keeps its classes in
study_class, its confidence labels in study.likert, how many neighbours Task 2 shows in
study.neighbours_shown; neighbours say which aid found them; cases keep every aid's votes by
k, the classifiers' probabilities and the saliency overlay. Existing (format-1) studies are
converted: their manifest's seven classes (with HAM10000's malignant flags), their five
labels, six SE-CBIR neighbours and the vote at k = 6.

Revision ID: i10a
Revises: 0008
Create Date: 2026-11-28 04:20:00

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'i10a'
down_revision = '0008'
branch_labels = None
depends_on = None

study = sa.table(
    'study',
    sa.column('id', sa.Integer),
    sa.column('manifest', sa.JSON),
    sa.column('likert', sa.JSON),
    sa.column('neighbours_shown', sa.Integer),
)
study_class = sa.table(
    'study_class',
    sa.column('study_id', sa.Integer),
    sa.column('position', sa.Integer),
    sa.column('code', sa.String),
    sa.column('name', sa.String),
    sa.column('colour', sa.String),
    sa.column('text_colour', sa.String),
    sa.column('definition', sa.Text),
    sa.column('malignant', sa.Boolean),
)
case = sa.table(
    'case',
    sa.column('id', sa.Integer),
    sa.column('majority_vote', sa.String),
    sa.column('votes', sa.JSON),
    sa.column('probabilities', sa.JSON),
)


# Frozen copies of studybundle.read's classes, likert and shown_neighbours (and of
# studybundle.taxonomy's HAM10000 malignant codes) as they were when this migration was
# written: a migration must not change when app code does, and a format-1 manifest reads
# today as it read then.
HAM10000_MALIGNANT = frozenset({'akiec', 'bcc', 'mel'})


def _classes(manifest):
    """The taxonomy in display order, each class with its `malignant` flag."""
    return [
        {**entry, 'malignant': entry.get('malignant', entry['code'] in HAM10000_MALIGNANT)}
        for entry in manifest['classes']
    ]


def _likert(manifest):
    """The confidence labels, level 1 first."""
    return list(manifest['likert'])


def _shown_neighbours(manifest):
    """How many neighbours Task 2 shows by default (the study's k)."""
    return int(manifest.get('neighbours') or 0)


def _manifest(value):
    """A JSON column's value as a dict (some drivers hand back text)."""
    return json.loads(value) if isinstance(value, str) else value


def _convert_studies(connection):
    """Each study's classes, labels and k from the manifest it was imported with."""
    for study_id, manifest in connection.execute(sa.select(study.c.id, study.c.manifest)):
        manifest = _manifest(manifest)
        connection.execute(
            study.update()
            .where(study.c.id == study_id)
            .values(likert=_likert(manifest), neighbours_shown=_shown_neighbours(manifest))
        )
        rows = [
            {
                'study_id': study_id,
                'position': position,
                **{key: entry[key] for key in (
                    'code', 'name', 'colour', 'text_colour', 'definition', 'malignant'
                )},
            }
            for position, entry in enumerate(_classes(manifest))
        ]
        if rows:
            connection.execute(study_class.insert(), rows)


def _convert_cases(connection):
    """Format 1 cases: the SE-CBIR vote at k = 6, no probabilities."""
    for case_id, vote in connection.execute(sa.select(case.c.id, case.c.majority_vote)):
        connection.execute(
            case.update()
            .where(case.c.id == case_id)
            .values(votes={'se_cbir': {'6': vote}}, probabilities={})
        )


def upgrade():
    op.create_table('study_class',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('colour', sa.String(length=7), nullable=False),
    sa.Column('text_colour', sa.String(length=7), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('malignant', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_study_class_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_class')),
    sa.UniqueConstraint('study_id', 'code', name=op.f('uq_study_class_study_id_code')),
    sa.UniqueConstraint('study_id', 'position', name=op.f('uq_study_class_study_id_position'))
    )
    with op.batch_alter_table('study_class', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_class_study_id'), ['study_id'], unique=False)

    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.add_column(sa.Column('likert', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('neighbours_shown', sa.Integer(), nullable=True))
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('votes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('probabilities', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('saliency', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('saliency_rotated', sa.String(length=80), nullable=True))

    connection = op.get_bind()
    _convert_studies(connection)
    _convert_cases(connection)

    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.alter_column('likert', existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column('neighbours_shown', existing_type=sa.Integer(), nullable=False)
        batch_op.create_check_constraint(
            batch_op.f('ck_study_neighbours_shown_not_negative'), 'neighbours_shown >= 0'
        )
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.alter_column('votes', existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column('probabilities', existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column('truth', existing_type=sa.String(length=8),
                              type_=sa.String(length=16), existing_nullable=False)
        batch_op.alter_column('majority_vote', existing_type=sa.String(length=8),
                              type_=sa.String(length=16), existing_nullable=False)
    with op.batch_alter_table('neighbour', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('aid', sa.String(length=16), nullable=False, server_default='se_cbir')
        )
        batch_op.alter_column('truth', existing_type=sa.String(length=8),
                              type_=sa.String(length=16), existing_nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_neighbour_case_id_rank'), type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_neighbour_case_id_aid_rank'), ['case_id', 'aid', 'rank']
        )
    with op.batch_alter_table('neighbour', schema=None) as batch_op:
        batch_op.alter_column('aid', existing_type=sa.String(length=16), server_default=None)
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_answer_diagnosis_known'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_answer_confidence_1_to_5'), type_='check')
        batch_op.alter_column('diagnosis', existing_type=sa.String(length=8),
                              type_=sa.String(length=16), existing_nullable=False)
        batch_op.create_check_constraint(
            batch_op.f('ck_answer_confidence_1_to_9'), 'confidence BETWEEN 1 AND 9'
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_answer_diagnosis_not_empty'), "diagnosis <> ''"
        )


def downgrade():
    # Back to HAM10000's seven codes and six SE-CBIR neighbours: other aids' rows are dropped;
    # a study with other classes or scales cannot go back (the constraints below refuse it).
    op.execute("DELETE FROM neighbour WHERE aid <> 'se_cbir'")
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_answer_diagnosis_not_empty'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_answer_confidence_1_to_9'), type_='check')
        batch_op.alter_column('diagnosis', existing_type=sa.String(length=16),
                              type_=sa.String(length=8), existing_nullable=False)
        batch_op.create_check_constraint(
            batch_op.f('ck_answer_confidence_1_to_5'), 'confidence BETWEEN 1 AND 5'
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_answer_diagnosis_known'),
            "diagnosis IN ('akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc')",
        )
    with op.batch_alter_table('neighbour', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_neighbour_case_id_aid_rank'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_neighbour_case_id_rank'), ['case_id', 'rank'])
        batch_op.alter_column('truth', existing_type=sa.String(length=16),
                              type_=sa.String(length=8), existing_nullable=False)
        batch_op.drop_column('aid')
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.alter_column('majority_vote', existing_type=sa.String(length=16),
                              type_=sa.String(length=8), existing_nullable=False)
        batch_op.alter_column('truth', existing_type=sa.String(length=16),
                              type_=sa.String(length=8), existing_nullable=False)
        batch_op.drop_column('saliency_rotated')
        batch_op.drop_column('saliency')
        batch_op.drop_column('probabilities')
        batch_op.drop_column('votes')
    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_study_neighbours_shown_not_negative'), type_='check')
        batch_op.drop_column('neighbours_shown')
        batch_op.drop_column('likert')
    with op.batch_alter_table('study_class', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_class_study_id'))
    op.drop_table('study_class')
