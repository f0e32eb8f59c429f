"""Study images, served by content-hash name to the users of a study that shows them."""

import os
import tempfile
from pathlib import Path

from flask import Blueprint, abort, request, send_file
from flask_login import current_user
from PIL import Image
from sqlalchemy import select, union
from werkzeug.wrappers import Response

from app.auth import may_see_study
from app.bundle import IMAGE_NAME
from app.extensions import db
from app.models import Case, Neighbour, Study

bp = Blueprint("images", __name__)

# Content-hash names never change meaning, so browsers may keep them for a year.
CACHE_CONTROL = "private, max-age=31536000, immutable"
# Widths a page may ask for with ?w= (a similar image's tile is about 110-210 CSS px wide):
# a right-sized copy loads in a quarter of the time on a slow line. Anything else is a 404.
WIDTHS = (240,)
THUMBNAILS = "thumbnails"


def resized(path: Path, width: int) -> Path:
    """A copy of the image `width` px wide, made once and kept beside the study's images."""
    target = path.parent / THUMBNAILS / f"{path.stem}-w{width}.jpg"
    if target.is_file():
        return target
    target.parent.mkdir(exist_ok=True)
    with Image.open(path) as image:
        if image.width <= width:
            return path
        height = max(1, round(image.height * width / image.width))
        small = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    # Written under a temporary name and renamed: a concurrent request never reads half a file.
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        small.save(out, format="JPEG", quality=85, optimize=True)  # no metadata is copied
    os.replace(temporary, target)
    return target


def studies_showing(name: str) -> list[Study]:
    """The studies whose cases (image, turned image, saliency overlays) or neighbours use the
    image file `name`."""
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
    ids = db.session.scalars(union(case_studies, neighbour_studies)).all()
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
                    path = resized(path, width)
                response = send_file(path, mimetype="image/jpeg", conditional=True, max_age=0)
                response.headers["Cache-Control"] = CACHE_CONTROL
                # send_file names the file; the URL already does, and nothing more is needed.
                response.headers.pop("Content-Disposition", None)
                return response
    abort(404)
