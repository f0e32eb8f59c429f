"""Record corrections of readers' e-mail addresses (address_change), tie each queued e-mail to
the invitation or enrolment it is about (its delivery status), and repair the addresses
that were stored with the comma or semicolon that separated them in a pasted list

Revision ID: walk1
Revises: walk2
Create Date: 2026-12-07 14:00:00

Before invitations were checked with email-validator, `derm.c@clinic.example,` was stored as
it was pasted: its reader could not log in with the real address and got no reset mail. Each
stored address that ends in "," or ";" loses that ending, when no other account has the
address it leaves; each repair of an account is recorded as an address change made by no one.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'walk1'
down_revision = 'walk2'
branch_labels = None
depends_on = None


def repaired(address):
    """The address without the separators a pasted list left at its end."""
    return address.strip().rstrip(",;").strip().lower()


def repair_addresses():
    """Strip trailing separators from accounts' and invitations' addresses (see above)."""
    connection = op.get_bind()
    users = sa.table('user', sa.column('id', sa.Integer), sa.column('email', sa.String))
    invitations = sa.table(
        'invitation', sa.column('id', sa.Integer), sa.column('email', sa.String)
    )
    changes = sa.table(
        'address_change',
        sa.column('user_id', sa.Integer),
        sa.column('old_email', sa.String),
        sa.column('new_email', sa.String),
        sa.column('changed_at', sa.DateTime),
    )
    taken = {row.email for row in connection.execute(sa.select(users.c.email))}
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    for row in connection.execute(sa.select(users.c.id, users.c.email)).all():
        fixed = repaired(row.email)
        if fixed == row.email or not fixed or fixed in taken:
            continue
        connection.execute(users.update().where(users.c.id == row.id).values(email=fixed))
        connection.execute(
            changes.insert().values(
                user_id=row.id, old_email=row.email, new_email=fixed, changed_at=moment
            )
        )
        taken.add(fixed)
    for row in connection.execute(sa.select(invitations.c.id, invitations.c.email)).all():
        fixed = repaired(row.email)
        if fixed != row.email and fixed:
            connection.execute(
                invitations.update().where(invitations.c.id == row.id).values(email=fixed)
            )


def upgrade():
    op.create_table(
        'address_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('invitation_id', sa.Integer(), nullable=True),
        sa.Column('old_email', sa.String(length=254), nullable=False),
        sa.Column('new_email', sa.String(length=254), nullable=False),
        sa.Column('changed_by_id', sa.Integer(), nullable=True),
        sa.Column('changed_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['changed_by_id'], ['user.id'], name=op.f('fk_address_change_changed_by_id_user')
        ),
        sa.ForeignKeyConstraint(
            ['invitation_id'],
            ['invitation.id'],
            name=op.f('fk_address_change_invitation_id_invitation'),
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user.id'], name=op.f('fk_address_change_user_id_user')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_address_change')),
    )
    with op.batch_alter_table('address_change', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_address_change_invitation_id'), ['invitation_id'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_address_change_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invitation_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('enrolment_id', sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_outbox_message_invitation_id'), ['invitation_id'], unique=False
        )
        batch_op.create_index(
            batch_op.f('ix_outbox_message_enrolment_id'), ['enrolment_id'], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_outbox_message_invitation_id_invitation'),
            'invitation',
            ['invitation_id'],
            ['id'],
            ondelete='SET NULL',
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_outbox_message_enrolment_id_enrolment'),
            'enrolment',
            ['enrolment_id'],
            ['id'],
            ondelete='SET NULL',
        )
    repair_addresses()


def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_outbox_message_enrolment_id_enrolment'), type_='foreignkey'
        )
        batch_op.drop_constraint(
            batch_op.f('fk_outbox_message_invitation_id_invitation'), type_='foreignkey'
        )
        batch_op.drop_index(batch_op.f('ix_outbox_message_enrolment_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_invitation_id'))
        batch_op.drop_column('enrolment_id')
        batch_op.drop_column('invitation_id')
    with op.batch_alter_table('address_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_change_user_id'))
        batch_op.drop_index(batch_op.f('ix_address_change_invitation_id'))
    op.drop_table('address_change')
