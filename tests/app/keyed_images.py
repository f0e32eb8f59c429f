"""The fixtures' bundle imports, with each bundle's keyed images made once per test process.

An import re-encodes every image with the deployment's keyed noise and writes its thumbnails
(`app.servedimages.key_image`): a third of the CPU of the `study` fixture, which some 900 tests
use, on the same two bundles. The importer skips that step when the bundle's keyed folder is
already in the image root (as for a second study of the same bundle), so `import_study` puts a
copy of the folder the first import made there, and the import itself runs as always: it
validates the bundle, decodes and compares every image and stores the cases.

The copy is found by the bundle's files (every byte) and the SECRET_KEY, the only inputs of the
keying, so it holds exactly the bytes the importer would have written. Tests of the import
itself call `app.bundle.import_bundle` directly and still key every image.
"""

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path

from flask import current_app

from app.bundle import import_bundle
from app.models import Study

_made: dict[str, Path] = {}
_store: list[Path] = []


def _fingerprint(folder: Path) -> str:
    """A hash of every file of the bundle (names and bytes) and of the app's SECRET_KEY."""
    digest = hashlib.sha256(current_app.config["SECRET_KEY"].encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _store_folder() -> Path:
    """This process's folder of keyed image folders, deleted when the process ends."""
    if not _store:
        _store.append(Path(tempfile.mkdtemp(prefix="secbir-keyed-images-")))
        atexit.register(shutil.rmtree, _store[0], ignore_errors=True)
    return _store[0]


def import_study(folder: Path, name: str) -> Study:
    """`import_bundle(folder, name, STUDY_IMAGES)` in an app context, keying the images only
    the first time this process imports these files."""
    root = Path(current_app.config["STUDY_IMAGES"])
    fingerprint = _fingerprint(Path(folder))
    made = _made.get(fingerprint)
    if made is not None and not (root / made.name).exists():
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(made, root / made.name)
    study, _ = import_bundle(folder, name, root)
    if made is None:
        keyed = Path(study.image_folder)
        kept = _store_folder() / fingerprint / keyed.name
        _made[fingerprint] = Path(shutil.copytree(keyed, kept))
    return study
