"""The one validator of a study bundle folder (docs/bundle.md): every rule, every problem."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from studybundle.errors import BundleError, Problems
from studybundle.images import check_image, check_rotation
from studybundle.jsonio import digest_of, load_json
from studybundle.limits import HEX_ONLY, IMAGE_NAME, MAX_MANIFEST_BYTES, MAX_QUERIES_BYTES
from studybundle.manifest import Layout, check_manifest
from studybundle.queries import check_queries

# Told how far a long step is: (what is being done, how many are done, out of how many).
Progress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """The default: nobody is told."""


# Shown each image once, as it is decoded for its check: (file name, pixels, whether it is a
# query's upright picture). The app hashes them there, so that no image is decoded again.
Look = Callable[[str, Image.Image, bool], None]


def no_look(name: str, image: Image.Image, query: bool) -> None:
    """The default: nobody looks."""


@dataclass(frozen=True)
class ValidBundle:
    """A bundle that passed every check, with what an import needs."""

    folder: Path
    manifest: dict[str, Any]
    queries: list[dict[str, Any]]
    digest: str  # sha256 over manifest and queries: the same bundle has the same digest
    images: frozenset[str]  # the file names in images/ that queries.json references
    layout: Layout

    @property
    def version(self) -> int:
        """The bundle's format version."""
        return self.layout.version

    @property
    def warnings(self) -> tuple[str, ...]:
        """What is wrong with the bundle but does not stop its import (Layout.warnings)."""
        return self.layout.warnings


def _ids(queries: list[dict[str, Any]]) -> set[str]:
    """Every image and lesion id of the bundle that could hide in a hex file name."""
    values: set[str] = set()
    for query in queries:
        values.update((query["image_id"], query["lesion_id"]))
        lists = [query.get("neighbours") or []]
        for aid in (query.get("aids") or {}).values():
            lists.append(aid.get("neighbours") or [])
            lists.extend((aid.get("class_neighbours") or {}).values())
        for neighbours in lists:
            for neighbour in neighbours:
                values.update((neighbour["image_id"], neighbour["lesion_id"]))
    return {value.lower() for value in values if HEX_ONLY.match(value.lower())}


def _pairs(query: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where, upright name, rotated name) of the query and of its saliency overlay."""
    pairs = [("image_rotated", query["image"], query["image_rotated"])]
    saliency = (query.get("aids") or {}).get("saliency")
    if saliency is not None:
        pairs.append(("aids.saliency.image_rotated", saliency["image"], saliency["image_rotated"]))
    return [(where, a.removeprefix("images/"), b.removeprefix("images/")) for where, a, b in pairs]


def _check_sizes(
    decoded: dict[str, Image.Image | None], query: dict[str, Any], where: str, size: int
) -> None:
    """The query image's longest side, its rotation, and its overlay's size and rotation."""
    pairs = _pairs(query)
    upright = decoded.get(pairs[0][1])
    if upright is not None and max(upright.size) != size:
        raise BundleError(f"{where}.image's longest side is not web_image_size {size}")
    for field, first, second in pairs:
        image, rotated = decoded.get(first), decoded.get(second)
        if image is None:
            continue
        if field.startswith("aids.") and upright is not None and image.size != upright.size:
            raise BundleError(
                f"{where}.aids.saliency.image is {image.width}x{image.height}, "
                f"not the query image's {upright.width}x{upright.height}"
            )
        if rotated is not None:
            check_rotation(image, rotated, f"{where}.{field}")


def check_images(
    root: Path,
    queries: list[dict[str, Any]],
    size: int,
    names: set[str],
    progress: Progress = no_progress,
    look: Look = no_look,
) -> None:
    """Check every referenced image, the query images' size and rotation, and the folder.

    Decoded pixels are kept for one query at a time (its upright and rotated image and
    overlay): holding every decoded image of a bundle took gigabytes. `look` is shown each
    image that decoded.
    """
    problems = Problems()
    paired = {name for query in queries for _, *pair in _pairs(query) for name in pair}
    uprights = {query["image"].removeprefix("images/") for query in queries}
    refused: set[str] = set()

    def decode(name: str) -> Image.Image | None:
        try:
            image = check_image(root / "images" / name)
        except BundleError as problem:
            if name not in refused:
                refused.add(name)
                problems.add(problem)
            return None
        look(name, image, name in uprights)
        return image

    done = 0
    for name in sorted(names - paired):  # neighbours: checked, not kept
        progress("Checking the images", done, len(names))
        decode(name)
        done += 1
    for index, query in enumerate(queries):
        wanted = sorted({name for _, *pair in _pairs(query) for name in pair} & names)
        progress("Checking the images", done, len(names))
        decoded = {name: decode(name) for name in wanted}
        done += len(wanted)
        try:
            _check_sizes(decoded, query, f"queries.json[{index}]", size)
        except BundleError as problem:
            problems.add(problem)
    folder = root / "images"
    ids = _ids(queries)
    # Each name's substrings of the ids' lengths, looked up in the set: linear in the files
    # (comparing every id with every name held a worker for minutes on a crafted bundle).
    lengths = sorted({len(identifier) for identifier in ids if len(identifier) <= 32})
    for path in folder.iterdir() if folder.is_dir() else ():
        if not IMAGE_NAME.match(path.name):
            problems.add(f"images/{path.name} is not named <32 hex digits>.jpg")
        elif _contains_any(path.stem, ids, lengths):
            problems.add(f"images/{path.name} contains an image or lesion id")
    problems.raise_if_any()


def _contains_any(text: str, needles: set[str], lengths: list[int]) -> bool:
    """Whether `text` contains one of `needles` (whose lengths are `lengths`)."""
    return any(
        text[start : start + length] in needles
        for length in lengths
        for start in range(len(text) - length + 1)
    )


def validate_bundle(
    folder: str | Path, progress: Progress = no_progress, look: Look = no_look
) -> ValidBundle:
    """Check everything about a bundle folder (docs/bundle.md); BundleError names the problems.

    `look` is shown every image as it is decoded (see Look)."""
    root = Path(folder)
    progress("Reading manifest.json and queries.json", 0, 0)
    if not root.is_dir():
        raise BundleError(f"{root} is not a folder.")
    if (root / "images").is_symlink():
        raise BundleError("images is a symbolic link: a bundle holds plain files only.")
    manifest = load_json(root / "manifest.json", MAX_MANIFEST_BYTES)
    layout = check_manifest(manifest)
    queries = load_json(root / "queries.json", MAX_QUERIES_BYTES)
    images = check_queries(queries, manifest, layout)
    check_images(root, queries, layout.web_image_size, images, progress, look)
    digest = digest_of(manifest, queries)
    return ValidBundle(root, manifest, queries, digest, frozenset(images), layout)
