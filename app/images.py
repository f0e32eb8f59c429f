"""Study images, served by keyed name to the users of a study that shows them.

Each file's bytes are the deployment's own (app.servedimages), and so is everything sent with
them: the ETag is a keyed hash of the bytes and no Last-Modified is sent, since a file's
modification time would order the files as they were written.
"""

import io
from pathlib import Path

from flask import Blueprint, abort, request, send_file
from flask_login import current_user
from sqlalchemy import select, union
from werkzeug.wrappers import Response

from app.auth import may_see_study
from app.bundle import IMAGE_NAME
from app.extensions import db
from app.models import Case, ClassNeighbour, Neighbour, Study
from app.servedimages import WIDTHS, etag, thumbnail

bp = Blueprint("images", __name__)

# Served names never change meaning, so browsers may keep them for a year.
CACHE_CONTROL = "private, max-age=31536000, immutable"


def studies_showing(name: str) -> list[Study]:
    """The studies whose cases (image, turned image, saliency overlays), neighbours or nearest
    images by class (what probes show) use the image file `name`."""
    case_studies = select(Case.study_id).where(
        (Case.image == name)
        | (Case.image_rotated == name)
        | (Case.saliency == name)
        | (Case.saliency_rotated == name)
    )
    neighbour_studies = (
        select(Case.study_id)
        .join(Neighbour, Neighbour.case_id == Case.id)
        .where(Neighbour.image == name)
    )
    class_studies = (
        select(Case.study_id)
        .join(ClassNeighbour, ClassNeighbour.case_id == Case.id)
        .where(ClassNeighbour.image == name)
    )
    ids = db.session.scalars(union(case_studies, neighbour_studies, class_studies)).all()
    return [study for study in (db.session.get(Study, id_) for id_ in ids) if study is not None]


@bp.get("/images/<name>.jpg")
def image(name: str) -> Response:
    """One image file if it belongs to a study the user may see; 404 for everyone else."""
    filename = f"{name}.jpg"
    if not IMAGE_NAME.match(filename):
        abort(404)
    width = request.args.get("w", type=int)
    if "w" in request.args and width not in WIDTHS:
        abort(404)
    for study in studies_showing(filename):
        if may_see_study(current_user, study.id):
            path = Path(study.image_folder) / filename
            if path.is_file():
                if width is not None:
                    path = thumbnail(path, width)
                data = path.read_bytes()
                response = send_file(
                    io.BytesIO(data),
                    mimetype="image/jpeg",
                    conditional=True,
                    etag=etag(data),
                    max_age=0,
                )
                response.headers["Cache-Control"] = CACHE_CONTROL
                # send_file names the file; the URL already does, and nothing more is needed.
                response.headers.pop("Content-Disposition", None)
                return response
    abort(404)
