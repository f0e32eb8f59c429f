"""Importing a study bundle as a study: validated whole first, then written whole or not at all.

The bundle's format, its validator and its limits live in the `studybundle` package, which the
training pipeline uses too (docs/bundle.md). This module only turns a valid bundle into rows.
"""

import hashlib
import hmac
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
from PIL import Image
from sqlalchemy import select

from app.auth import managed_study_ids
from app.extensions import db
from app.imagehashes import Colours, colours, near_pairs, perceptual_hash
from app.models import Case, ClassNeighbour, Neighbour, Study, StudyClass, StudyStatus, User
from app.servedimages import KEYED_SUFFIX, deployment_key, key_image
from studybundle import BundleError, ValidBundle, read, validate_bundle
from studybundle.archive import extract_zip
from studybundle.errors import Problems
from studybundle.limits import IMAGE_NAME
from studybundle.validate import Progress, no_progress

__all__ = [
    "IMAGE_NAME",
    "BundleError",
    "copy_study",
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
    key = deployment_key(b"secbir study image names", secret)
    return hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:32] + ".jpg"


def _copy_images(
    bundle: ValidBundle, image_root: Path, progress: Progress, staging_name: str | None
) -> tuple[Path, bool]:
    """Key the images into image_root/<digest[:16]>-keyed/ atomically; whether we created it.

    Every image is decoded and encoded again with this deployment's keyed noise and encoder
    settings, its thumbnails too (app.servedimages): what is served holds the pixels and
    nothing a bundle's file may have carried besides them, in bytes nobody computes without
    SECRET_KEY. They are written in the order of their keyed names, staged in a folder beside
    the target (`staging_name`, or a fresh .import-* one), renamed into place when complete.
    """
    target = image_root / (bundle.digest[:16] + KEYED_SUFFIX)
    if target.is_dir():
        return target, False
    image_root.mkdir(parents=True, exist_ok=True)
    if staging_name is None:
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=image_root))
    else:
        staging = image_root / staging_name
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    try:
        names = sorted((served_name(name), name) for name in bundle.images)
        for done, (served, name) in enumerate(names):
            progress("Re-encoding the images", done, len(names))
            key_image(bundle.folder / "images" / name, staging, served)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, True


TURNS = (0, 90, 180, 270)  # a query's picture may be shown turned by any right angle
TURN_SIDE = 256  # the side of the square copy of a query's picture that is turned


@dataclass
class Pictures:
    """What the import keeps of each image it decodes, to find a query's picture elsewhere:
    its perceptual hash (a query's at every turn) and its colours (app.imagehashes)."""

    hashes: dict[str, imagehash.ImageHash] = field(default_factory=dict)
    turned: dict[str, list[imagehash.ImageHash]] = field(default_factory=dict)
    colours: dict[str, Colours] = field(default_factory=dict)

    def look(self, name: str, image: Image.Image, query: bool) -> None:
        """Keep what the comparison needs of one decoded image (studybundle's Look)."""
        self.hashes[name] = perceptual_hash(image)
        self.colours[name] = colours(image)
        if query:
            # Turned from a small square copy (the hash squares the picture anyway): turning
            # the decoded image would double the memory its decoding was allowed.
            square = image.resize((TURN_SIDE, TURN_SIDE), Image.Resampling.LANCZOS)
            self.turned[name] = [perceptual_hash(square.rotate(angle)) for angle in TURNS]


def _shown_images(
    manifest: dict[str, Any], query: dict[str, Any], where: str
) -> list[tuple[str, dict[str, Any]]]:
    """Every image a reading of `query` may show beside it, with where the bundle lists it:
    its aids' neighbours, and their nearest images by class (which probes show)."""
    found = [
        (f"{where} {aid} neighbour {item['rank']}", item)
        for aid, items in read.neighbour_lists(manifest, query).items()
        for item in items
    ]
    for aid, by_class in read.class_neighbours(manifest, query).items():
        for code, items in by_class.items():
            found += [(f"{where} {aid} {code} image {item['rank']}", item) for item in items]
    return found


def refuse_query_pictures(bundle: ValidBundle, pictures: Pictures) -> None:
    """BundleError if a neighbour shows a query's picture under another id or encoding.

    The bundle has passed validate_bundle, which refused the same id, bytes and lesion; this
    compares the pictures (NEAR bits of their perceptual hashes at any right-angle turn, and
    colours within SAME_COLOURS), naming both images.
    """
    queries = {
        query["image"].removeprefix("images/"): (index, query["image_id"])
        for index, query in enumerate(bundle.queries)
    }
    shown: dict[str, list[tuple[str, str]]] = {}
    for index, query in enumerate(bundle.queries):
        for where, item in _shown_images(bundle.manifest, query, f"queries.json[{index}]"):
            shown.setdefault(item["image"].removeprefix("images/"), []).append(
                (where, item["image_id"])
            )
    problems = Problems()
    pairs = near_pairs(
        {name: pictures.hashes[name] for name in shown},
        {name: pictures.turned[name] for name in queries},
        pictures.colours,
    )
    for name, query_name, bits in pairs:
        index, query_id = queries[query_name]
        for where, image_id in shown[name]:
            problems.add(
                f"{where} ({image_id}, images/{name}) shows the picture of query"
                f" queries.json[{index}] ({query_id}, images/{query_name}):"
                f" {bits} of 256 bits of their perceptual hashes differ"
            )
    problems.raise_if_any()


def _case(manifest: dict[str, Any], query: dict[str, Any], position: int, shown: int) -> Case:
    """One query as a case with every aid it carries (format 1 read as format 2)."""
    votes = read.votes(manifest, query)
    overlay = read.saliency(manifest, query)
    case = Case(
        position=position,
        case_key=query["case_key"],
        image_id=query["image_id"],
        lesion_id=query["lesion_id"],
        truth=query["truth"],
        majority_vote=votes["se_cbir"][shown],
        image=served_name(query["image"].removeprefix("images/")),
        image_rotated=served_name(query["image_rotated"].removeprefix("images/")),
        votes={aid: {str(k): code for k, code in by_k.items()} for aid, by_k in votes.items()},
        probabilities=read.probabilities(manifest, query),
        saliency=served_name(overlay[0]) if overlay else None,
        saliency_rotated=served_name(overlay[1]) if overlay else None,
        context=read.context(manifest, query),
    )
    case.neighbours = [
        Neighbour(
            aid=aid,
            rank=item["rank"],
            image_id=item["image_id"],
            lesion_id=item["lesion_id"],
            truth=item["truth"],
            similarity=float(item["similarity"]),
            image=served_name(item["image"].removeprefix("images/")),
        )
        for aid, items in read.neighbour_lists(manifest, query).items()
        for item in items
    ]
    case.class_neighbours = [
        ClassNeighbour(
            aid=aid,
            rank=item["rank"],
            image_id=item["image_id"],
            lesion_id=item["lesion_id"],
            truth=code,
            similarity=float(item["similarity"]),
            image=served_name(item["image"].removeprefix("images/")),
        )
        for aid, by_class in read.class_neighbours(manifest, query).items()
        for code, items in by_class.items()
        for item in items
    ]
    return case


def import_bundle(
    folder: str | Path,
    name: str,
    image_root: str | Path,
    created_by: User | None = None,
    progress: Progress = no_progress,
    staging_name: str | None = None,
) -> tuple[Study, bool]:
    """Import a validated bundle as a draft study; the same bundle again returns the old one.

    With `created_by`, only a study they may manage counts as the old one: a bundle that is
    in other organisers' studies only becomes a new study of theirs (sharing the images), so
    that an import tells nobody what is in studies they do not run. `progress` is told how far
    the long steps are (checking and re-encoding the images); it runs before anything is
    added to the session. `staging_name` names the folder in image_root where the images
    wait until complete: an import job names it after itself, so that the folder of a job
    whose process was killed can be found and deleted.
    """
    pictures = Pictures()
    bundle = validate_bundle(folder, progress, pictures.look)
    refuse_query_pictures(bundle, pictures)
    manifest = bundle.manifest
    if "se_cbir" not in read.aids(manifest):
        raise BundleError(
            "The survey shows SE-CBIR neighbours in Task 2: this bundle carries no se_cbir aid."
        )
    same = select(Study).where(Study.bundle_digest == bundle.digest)
    managed = managed_study_ids(created_by) if created_by is not None else None
    if managed is not None:
        same = same.where(Study.id.in_(managed))
    existing = db.session.scalar(same.order_by(Study.id).limit(1))
    if existing is not None:
        return existing, False
    target, created_folder = _copy_images(bundle, Path(image_root), progress, staging_name)
    progress("Storing the cases", 0, 0)
    shown = read.shown_neighbours(manifest)
    study = Study(
        name=name.strip() or "Untitled study",
        status=StudyStatus.DRAFT,
        manifest=manifest,
        likert=read.likert(manifest),
        neighbours_shown=shown,
        bundle_digest=bundle.digest,
        image_folder=str(target),
        created_by_id=created_by.id if created_by is not None else None,
    )
    study.classes = [
        StudyClass(
            position=position,
            code=entry["code"],
            name=entry["name"],
            colour=entry["colour"],
            text_colour=entry["text_colour"],
            definition=entry["definition"],
            malignant=entry["malignant"],
        )
        for position, entry in enumerate(read.classes(manifest))
    ]
    study.cases_per_reader = min(100, len(bundle.queries))
    study.cases = [_case(manifest, query, i, shown) for i, query in enumerate(bundle.queries)]
    db.session.add(study)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if created_folder:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return study, True


# What a copy of a study keeps: its bundle (cases, taxonomy, scale, images) and its settings.
COPIED_SETTINGS = (
    "manifest",
    "likert",
    "neighbours_shown",
    "bundle_digest",
    "image_folder",
    "information",
    "cases_per_reader",
    "washout_hours",
    "sampling",
    "reshuffle_later_sessions",
    "design",
    "conditions",
    "rotate_later_sessions",
    "probe_share",
    "reminder_days",
    "practice_cases",
    "feedback",
)


def _columns(row: object, skip: tuple[str, ...]) -> dict[str, Any]:
    """A row's column values by attribute name, but its keys and those in `skip`."""
    table = type(row).__table__  # type: ignore[attr-defined]
    return {c.key: getattr(row, c.key) for c in table.columns if c.key not in ("id", *skip)}


def copy_study(source: Study, name: str, created_by: User | None = None) -> Study:
    """A new draft study on the same bundle as `source`, with its settings and no readers.

    For a second study of the same cases: another design, another group of readers. The copy
    shares the source's images (folder and names) and bundle digest; its consent text starts
    again at version 1, and nothing of the source's readers, invitations, answers or team comes
    along (the caller adds the creator as owner). The caller commits.
    """
    study = Study(
        name=name.strip() or f"Copy of {source.name}",
        status=StudyStatus.DRAFT,
        created_by_id=created_by.id if created_by is not None else None,
        **{key: getattr(source, key) for key in COPIED_SETTINGS},
    )
    study.classes = [StudyClass(**_columns(item, ("study_id",))) for item in source.classes]
    study.cases = []
    for case in source.cases:
        copy = Case(**_columns(case, ("study_id",)))
        copy.neighbours = [Neighbour(**_columns(n, ("case_id",))) for n in case.neighbours]
        copy.class_neighbours = [
            ClassNeighbour(**_columns(n, ("case_id",))) for n in case.class_neighbours
        ]
        study.cases.append(copy)
    db.session.add(study)
    return study
