"""Importing a study bundle as a study: validated whole first, then written whole or not at all.

The bundle's format, its validator and its limits live in the `studybundle` package, which the
training pipeline uses too (docs/bundle.md). This module only turns a valid bundle into rows.
"""

import hashlib
import hmac
import shutil
import tempfile
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Case, Neighbour, Study, StudyStatus, User
from studybundle import BundleError, ValidBundle, validate_bundle
from studybundle.archive import extract_zip
from studybundle.limits import IMAGE_NAME

__all__ = [
    "IMAGE_NAME",
    "BundleError",
    "extract_zip",
    "import_bundle",
    "served_name",
    "validate_bundle",
]


def served_name(name: str, secret: str | None = None) -> str:
    """The name a bundle image is stored and served under in this deployment.

    A bundle names images by a hash of their content, which anyone holding the public dataset
    and this open-source code can compute (and so map a URL to an image id and diagnosis).
    Served names are keyed by the deployment's SECRET_KEY instead: nobody computes them
    without it, and two deployments never share one. Fixed at import (stored in the rows), so
    a later change of SECRET_KEY does not move images.
    """
    secret_bytes = (secret or current_app.config["SECRET_KEY"]).encode()
    key = hmac.new(secret_bytes, b"secbir study image names", hashlib.sha256).digest()
    return hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:32] + ".jpg"


def _copy_images(bundle: ValidBundle, image_root: Path) -> tuple[Path, bool]:
    """Copy the images into image_root/<digest[:16]>/ atomically; whether we created it."""
    target = image_root / bundle.digest[:16]
    if target.is_dir():
        return target, False
    image_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=image_root))
    try:
        for name in bundle.images:
            shutil.copyfile(bundle.folder / "images" / name, staging / served_name(name))
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, True


def import_bundle(
    folder: str | Path, name: str, image_root: str | Path, created_by: User | None = None
) -> tuple[Study, bool]:
    """Import a validated bundle as a draft study; the same bundle again returns the old one."""
    bundle = validate_bundle(folder)
    if bundle.version != 1:
        raise BundleError("This app imports format-1 bundles only so far.")
    existing = db.session.scalar(select(Study).where(Study.bundle_digest == bundle.digest))
    if existing is not None:
        return existing, False
    target, created_folder = _copy_images(bundle, Path(image_root))
    study = Study(
        name=name.strip() or "Untitled study",
        status=StudyStatus.DRAFT,
        manifest=bundle.manifest,
        bundle_digest=bundle.digest,
        image_folder=str(target),
        created_by_id=created_by.id if created_by is not None else None,
    )
    study.cases_per_reader = min(100, len(bundle.queries))
    for position, query in enumerate(bundle.queries):
        case = Case(
            position=position,
            case_key=query["case_key"],
            image_id=query["image_id"],
            lesion_id=query["lesion_id"],
            truth=query["truth"],
            majority_vote=query["majority_vote"],
            image=served_name(query["image"].removeprefix("images/")),
            image_rotated=served_name(query["image_rotated"].removeprefix("images/")),
        )
        case.neighbours = [
            Neighbour(
                rank=item["rank"],
                image_id=item["image_id"],
                lesion_id=item["lesion_id"],
                truth=item["truth"],
                similarity=float(item["similarity"]),
                image=served_name(item["image"].removeprefix("images/")),
            )
            for item in query["neighbours"]
        ]
        study.cases.append(case)
    db.session.add(study)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if created_folder:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return study, True
