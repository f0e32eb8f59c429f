"""Study images, served by content-hash name to the users of a study that shows them."""

from pathlib import Path

from flask import Blueprint, abort, send_file
from flask_login import current_user
from sqlalchemy import select, union
from werkzeug.wrappers import Response

from app.auth import may_see_study
from app.bundle import IMAGE_NAME
from app.extensions import db
from app.models import Case, Neighbour, Study

bp = Blueprint("images", __name__)

# Content-hash names never change meaning, so browsers may keep them for a year.
CACHE_CONTROL = "private, max-age=31536000, immutable"


def studies_showing(name: str) -> list[Study]:
    """The studies whose cases or neighbours use the image file `name`."""
    case_studies = select(Case.study_id).where((Case.image == name) | (Case.image_rotated == name))
    neighbour_studies = (
        select(Case.study_id)
        .join(Neighbour, Neighbour.case_id == Case.id)
        .where(Neighbour.image == name)
    )
    ids = db.session.scalars(union(case_studies, neighbour_studies)).all()
    return [study for study in (db.session.get(Study, id_) for id_ in ids) if study is not None]


@bp.get("/images/<name>.jpg")
def image(name: str) -> Response:
    """One image file if it belongs to a study the user may see; 404 for everyone else."""
    filename = f"{name}.jpg"
    if not IMAGE_NAME.match(filename):
        abort(404)
    for study in studies_showing(filename):
        if may_see_study(current_user, study.id):
            path = Path(study.image_folder) / filename
            if path.is_file():
                response = send_file(path, mimetype="image/jpeg", conditional=True, max_age=0)
                response.headers["Cache-Control"] = CACHE_CONTROL
                # send_file names the file; the URL already does, and nothing more is needed.
                response.headers.pop("Content-Disposition", None)
                return response
    abort(404)
