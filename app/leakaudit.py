"""The leak audit: how many of a study's cases a reader could look up in the public dataset.

`flask study audit-leaks STUDY --dataset DIR` plays the attacker of issue 22 before a study
opens: someone who holds the public images (HAM10000, or the seeded demo set) and this
repository, but not the deployment's SECRET_KEY, and who receives every file a reader of the
study receives. Three routes from a served file to a public image, hence to its diagnosis:

- exact bytes: the SHA-256 of every file anyone can compute from a public image with this
  code (the file itself; the bundle's encoding of it at the study's web size, upright and
  turned by 90, 180 and 270 degrees; and the plain re-encoding an import made of those before
  images were keyed);
- size: the byte count of those same files, when it fits exactly one public image;
- perceptual hash: the nearest public image (any turn) by 64-bit pHash, when it is within
  AUDIT_DISTANCE bits.

A route identifies a file when it names exactly the image the file shows (the study's rows
know which); a case is identified when any file of it is (its image, turned image, saliency
overlays, or their thumbnails), a neighbour image when its file is. The audit reports counts
only: it never prints an image id or a diagnosis.
"""

import hashlib
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy
from numpy.typing import NDArray
from PIL import Image

from app.imagehashes import AUDIT_DISTANCE, TURNS, as_array, distances, turned_hashes
from app.models import Case, Study
from app.servedimages import WIDTHS, thumbnail_path
from studybundle.images import bundle_jpeg, reencode, web_sized

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ROUTES = ("exact bytes", "size", "perceptual hash")


class AuditError(Exception):
    """The audit cannot run (no public images, an unreadable folder); the message says why."""


@dataclass
class PublicTable:
    """What the attacker computes once from the public images: image ids by file digest, by
    file size, and every image's turned pHashes."""

    by_digest: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_size: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    hash_ids: list[str] = field(default_factory=list)
    hashes: NDArray[numpy.uint64] = field(default_factory=lambda: as_array([]))
    images: int = 0

    def add_file(self, image_id: str, data: bytes) -> None:
        """Record one file computable from public image `image_id`."""
        self.by_digest[hashlib.sha256(data).hexdigest()].add(image_id)
        self.by_size[len(data)].add(image_id)

    def exact(self, data: bytes) -> set[str]:
        """The public images a served file is byte for byte."""
        return self.by_digest.get(hashlib.sha256(data).hexdigest(), set())

    def sized(self, data: bytes) -> set[str]:
        """The public images some computable file of which has this file's size."""
        return self.by_size.get(len(data), set())

    def nearest(self, image: Image.Image) -> set[str]:
        """The public image(s) nearest to `image` by pHash, if within AUDIT_DISTANCE bits."""
        if not self.hash_ids:
            return set()
        apart = distances(turned_hashes(image)[0], self.hashes)
        closest = int(apart.min())
        if closest > AUDIT_DISTANCE:
            return set()
        return {self.hash_ids[index] for index in numpy.flatnonzero(apart == closest)}


def public_images(dataset: Path) -> Iterator[tuple[str, Path]]:
    """(image id, file) for every image under `dataset`, named `<image id>.<jpg|png>` (the
    layout of HAM10000 and of `python -m training synth`)."""
    if not dataset.is_dir():
        raise AuditError(f"{dataset} is not a folder")
    for path in sorted(dataset.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            yield path.stem, path


def public_table(
    dataset: Path, web_size: int, progress: Callable[[int], None] = lambda done: None
) -> PublicTable:
    """The attacker's table of every public image under `dataset` (see the module's text)."""
    table = PublicTable()
    ids: list[str] = []
    hashes: list[int] = []
    for done, (image_id, path) in enumerate(public_images(dataset)):
        progress(done)
        data = path.read_bytes()
        table.add_file(image_id, data)
        try:
            with Image.open(io.BytesIO(data)) as image:
                web = web_sized(image, web_size)
        except (OSError, ValueError) as problem:
            raise AuditError(f"{path} is not a readable image ({problem})") from None
        for turn in TURNS:
            pixels = numpy.rot90(numpy.asarray(web), turn // 90)
            encoded = bundle_jpeg(pixels)
            table.add_file(image_id, encoded)
            table.add_file(image_id, reencode(io.BytesIO(encoded)))
        ids.extend([image_id] * len(TURNS))
        hashes.extend(turned_hashes(web))
        table.images += 1
    if not table.images:
        raise AuditError(f"{dataset} holds no images (.jpg, .jpeg or .png files)")
    table.hash_ids, table.hashes = ids, as_array(hashes)
    return table


@dataclass(frozen=True)
class ServedFile:
    """One file a reader of the study may receive, and the public image it shows."""

    path: Path
    image_id: str
    case: int | None  # the case's position when it shows the case (image, turned, overlay)


def shown_neighbours(case: Case) -> list[tuple[str, str]]:
    """(file name, image id) of every neighbour image a reading of `case` may show: its
    aids' lists and its nearest images by class, which probes show."""
    return [(n.image, n.image_id) for n in case.neighbours] + [
        (n.image, n.image_id) for n in case.class_neighbours
    ]


def served_files(study: Study, folder: Path | None = None) -> list[ServedFile]:
    """Every file of `study` a reader may receive (thumbnails included), from its image
    folder or from `folder` (files of the same names, e.g. as served before keying)."""
    where = Path(study.image_folder) if folder is None else folder
    shown: dict[tuple[str, int | None], str] = {}
    for case in study.cases:
        names = (case.image, case.image_rotated, case.saliency, case.saliency_rotated)
        for name in names:
            if name is not None:
                shown[(name, case.position)] = case.image_id
        for name, image_id in shown_neighbours(case):
            shown[(name, None)] = image_id
    found: list[ServedFile] = []
    for (name, position), image_id in sorted(shown.items(), key=lambda item: str(item[0])):
        paths = [where / name, *(thumbnail_path(where, name, width) for width in WIDTHS)]
        found.extend(ServedFile(p, image_id, position) for p in paths if p.is_file())
    return found


@dataclass
class RouteCount:
    """What one route identifies: files, cases and neighbour images, each of how many."""

    files: int = 0
    cases: set[int] = field(default_factory=set)
    neighbours: set[str] = field(default_factory=set)


@dataclass
class AuditResult:
    """The audit's counts for one study (no ids, no diagnoses)."""

    files: int
    cases: int
    cases_public: int  # cases whose image is among the public images
    neighbours: int
    neighbours_public: int
    public_images: int
    routes: dict[str, RouteCount]

    def lines(self) -> list[str]:
        """The report, one line per route."""
        out = [
            f"{self.files} served files; {self.cases} cases ({self.cases_public} of them public),"
            f" {self.neighbours} neighbour images ({self.neighbours_public} public); "
            f"{self.public_images} public images (pHash match: within {AUDIT_DISTANCE} bits)",
            f"{'route':<16} {'cases':>12} {'neighbours':>12} {'files':>12}",
        ]
        for route, count in self.routes.items():
            out.append(
                f"{route:<16} {f'{len(count.cases)}/{self.cases}':>12} "
                f"{f'{len(count.neighbours)}/{self.neighbours}':>12} "
                f"{f'{count.files}/{self.files}':>12}"
            )
        return out


def audit(study: Study, table: PublicTable, files: Iterable[ServedFile]) -> AuditResult:
    """Play the attacker on every served file of `study`; how many each route identifies."""
    routes = {route: RouteCount() for route in ROUTES}
    known = set(table.hash_ids)
    listed = list(files)
    for item in listed:
        data = item.path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            named = {
                "exact bytes": table.exact(data),
                "size": table.sized(data),
                "perceptual hash": table.nearest(image),
            }
        for route, ids in named.items():
            if ids == {item.image_id}:
                count = routes[route]
                count.files += 1
                if item.case is not None:
                    count.cases.add(item.case)
                else:
                    count.neighbours.add(item.image_id)
    neighbour_ids = {image_id for case in study.cases for _, image_id in shown_neighbours(case)}
    return AuditResult(
        files=len(listed),
        cases=len(study.cases),
        cases_public=sum(case.image_id in known for case in study.cases),
        neighbours=len(neighbour_ids),
        neighbours_public=len(neighbour_ids & known),
        public_images=table.images,
        routes=routes,
    )
