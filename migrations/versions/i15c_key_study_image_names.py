"""Rename study images to names keyed by SECRET_KEY: URLs no longer computable from the dataset

Revision ID: i15c
Revises: i15b
Create Date: 2026-11-28 05:25:00

Bundles name images by a hash of their content, which anyone with the public dataset can
compute. Every stored image is renamed on disk to app.bundle.served_name(old name), keyed by
this deployment's SECRET_KEY, and the rows follow. Run it with the deployment's SECRET_KEY
set (flask db upgrade does). A file already renamed (an interrupted run) is left as it is.
Downgrade keeps the keyed names: the old code serves whatever names the rows hold.
"""
import hashlib
import hmac
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from flask import current_app

# revision identifiers, used by Alembic.
revision = 'i15c'
down_revision = 'i15b'
branch_labels = None
depends_on = None


def served_name(name: str) -> str:
    """The keyed name of a bundle image, as app.bundle.served_name gave it when this migration
    was written (with app.servedimages.deployment_key inlined), keyed by SECRET_KEY.

    A frozen copy, not an import: a migration must not change when app code does. Should the
    app ever name images otherwise, it is a new migration's job to rename them again.
    """
    secret = current_app.config["SECRET_KEY"]
    key = hmac.new(secret.encode(), b"secbir study image names", hashlib.sha256).digest()
    return hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:32] + ".jpg"


def _rename(folder: Path, old: str, new: str) -> None:
    """Move one image file to its keyed name, if it is still under the old one."""
    source, target = folder / old, folder / new
    if source.is_file() and not target.exists():
        source.rename(target)


def upgrade():
    connection = op.get_bind()
    folders = dict(connection.execute(sa.text("SELECT id, image_folder FROM study")).all())
    cases = connection.execute(
        sa.text("SELECT id, study_id, image, image_rotated FROM \"case\"")
    ).all()
    for case_id, study_id, image, rotated in cases:
        folder = Path(folders[study_id])
        for old in (image, rotated):
            _rename(folder, old, served_name(old))
        connection.execute(
            sa.text('UPDATE "case" SET image = :image, image_rotated = :rotated WHERE id = :id'),
            {"image": served_name(image), "rotated": served_name(rotated), "id": case_id},
        )
    neighbours = connection.execute(
        sa.text(
            'SELECT neighbour.id, "case".study_id, neighbour.image FROM neighbour '
            'JOIN "case" ON "case".id = neighbour.case_id'
        )
    ).all()
    for neighbour_id, study_id, image in neighbours:
        _rename(Path(folders[study_id]), image, served_name(image))
        connection.execute(
            sa.text("UPDATE neighbour SET image = :image WHERE id = :id"),
            {"image": served_name(image), "id": neighbour_id},
        )


def downgrade():
    pass
