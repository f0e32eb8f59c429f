"""Small, valid study bundles for the app's tests: Pillow-drawn JPEGs, no TensorFlow.

`make_bundle(folder, cases=30, seed=0)` writes a format-1 bundle (manifest.json, queries.json,
images/); `make_bundle_v2(folder, ...)` a format-2 one with any taxonomy, scale, aids and
neighbour count. Different seeds give different bundles (and digests).
"""

import hashlib
import io
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from studybundle.taxonomy import HAM10000, HAM10000_CODES, LIKERT, ClassInfo
from studybundle.vocabulary import BUNDLE_AIDS, CLASSIFIERS, NEIGHBOUR_AIDS
from studybundle.vote import majority_vote

CLASSES = HAM10000_CODES
SIZE = 24  # web_image_size: the longest side of every query image


def picture(seed: int, size: int = SIZE) -> Image.Image:
    """A small picture whose pixels depend on `seed`: a background and a few blobs."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = rng.randrange(size // 2), rng.randrange(size)
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


def encode(image: Image.Image) -> bytes:
    """Baseline JPEG bytes without metadata."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def jpeg_bytes(seed: int, size: int = SIZE) -> bytes:
    """A small JPEG whose pixels depend on `seed` (so every seed has its own content hash)."""
    return encode(picture(seed, size))


def many_scans_jpeg(scans: int, size: int = 2048, seed: int = 0) -> bytes:
    """A valid progressive JPEG of size x size pixels with `scans` scans, in few bytes.

    A flat picture saved as a progressive JPEG (10 scans), whose last scan (16 bytes: a
    refinement pass over every block of the luma) is repeated. A decoder passes over the
    whole image once per scan, so many scans make a decompression bomb: 40,000 of them held an
    import for over five minutes. Different seeds give different colours (and file names).
    """
    rng = random.Random(seed)
    colour = tuple(rng.randrange(256) for _ in range(3))
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "JPEG", quality=90, progressive=True)
    data = out.getvalue()
    last, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    extra = scans - data.count(b"\xff\xda")
    assert extra >= 0, f"Pillow writes more than {scans} scans"
    return data[:end] + data[last:end] * extra + data[end:]


def write_image(images: Path, data: bytes) -> str:
    """Store `data` under its content-hash name; the reference used in queries.json."""
    name = hashlib.sha256(data).hexdigest()[:32] + ".jpg"
    (images / name).write_bytes(data)
    return f"images/{name}"


def manifest(cases: int) -> dict[str, Any]:
    """A manifest.json object for a bundle of `cases` queries."""
    return {
        "format_version": 1,
        "classes": [info.as_json(with_malignant=False) for info in HAM10000],
        "likert": list(LIKERT),
        "neighbours": 6,
        "web_image_size": SIZE,
        "provenance": {"run": "tests", "model": "none", "dataset": "pillow"},
        "counts": {
            "queries_before": cases + 2,
            "queries_after": cases,
            "dropped": {"same lesion as an earlier query": 2},
            "images": 0,
        },
    }


def make_bundle(folder: Path, cases: int = 30, seed: int = 0, pool: int = 40) -> Path:
    """Write a valid bundle of `cases` queries (neighbours drawn from `pool` images) to folder."""
    rng = random.Random(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    base = seed * 100000
    neighbour_pool = []
    for index in range(pool):
        neighbour_pool.append(
            {
                "image_id": f"ISIC_N{seed:02d}{index:05d}",
                "lesion_id": f"HAM_N{seed:02d}{index:05d}",
                "truth": CLASSES[index % len(CLASSES)],
                "image": write_image(images, jpeg_bytes(base + 50000 + index)),
            }
        )
    queries = []
    for index in range(cases):
        upright = picture(base + 2 * index)
        truth = CLASSES[index % len(CLASSES)]
        picked = rng.sample(neighbour_pool, 6)
        similarities = sorted((rng.uniform(0.5, 1.0) for _ in range(6)), reverse=True)
        queries.append(
            {
                "case_key": hashlib.sha256(f"key-{seed}-{index}".encode()).hexdigest()[:24],
                "image_id": f"ISIC_Q{seed:02d}{index:05d}",
                "lesion_id": f"HAM_Q{seed:02d}{index:05d}",
                "truth": truth,
                "majority_vote": CLASSES[(index + (index % 3 == 0)) % len(CLASSES)],
                "image": write_image(images, encode(upright)),
                "image_rotated": write_image(images, encode(upright.rotate(180))),
                "neighbours": [
                    {
                        "rank": rank,
                        "image_id": item["image_id"],
                        "lesion_id": item["lesion_id"],
                        "truth": item["truth"],
                        "similarity": round(similarity, 4),
                        "image": item["image"],
                    }
                    for rank, (item, similarity) in enumerate(
                        zip(picked, similarities, strict=True), start=1
                    )
                ],
            }
        )
    described = manifest(cases)
    described["counts"]["images"] = len(list(images.iterdir()))
    (folder / "manifest.json").write_text(json.dumps(described, indent=2, sort_keys=True))
    (folder / "queries.json").write_text(json.dumps(queries, indent=2))
    return folder


def read_queries(folder: Path) -> list[dict[str, Any]]:
    """queries.json of a bundle, for tests that break it on purpose."""
    return json.loads((folder / "queries.json").read_text())


def write_queries(folder: Path, queries: list[dict[str, Any]]) -> None:
    """Rewrite queries.json of a bundle."""
    (folder / "queries.json").write_text(json.dumps(queries))


def replace_neighbour_images(folder: Path, images: Sequence[bytes]) -> list[str]:
    """Put `images` in place of the bundle's first neighbour images (every reference to
    each; the old files are deleted, so the count stays); their references."""
    queries = read_queries(folder)
    used = [item["image"] for query in queries for item in query["neighbours"]]
    old = list(dict.fromkeys(used))[: len(images)]
    new = [write_image(folder / "images", data) for data in images]
    swap = dict(zip(old, new, strict=True))
    for query in queries:
        for item in query["neighbours"]:
            item["image"] = swap.get(item["image"], item["image"])
    write_queries(folder, queries)
    for reference in old:
        (folder / reference).unlink()
    return new


# ---------------------------------------------------------------- format 2

# An ISIC 2019-like taxonomy of eight classes (SCC added), with its own codes and colours.
ISIC2019 = (
    ClassInfo("MEL", "Melanoma", "#000000", "#FFFFFF", "Melanoma, all variants.", True),
    ClassInfo("NV", "Melanocytic nevus", "#0072B2", "#FFFFFF", "Benign nevi.", False),
    ClassInfo("BCC", "Basal cell carcinoma", "#D55E00", "#000000", "Basal cell carcinoma.", True),
    ClassInfo("AK", "Actinic keratosis", "#E69F00", "#000000", "Actinic keratosis.", True),
    ClassInfo("BKL", "Benign keratosis", "#009E73", "#000000", "Benign keratoses.", False),
    ClassInfo("DF", "Dermatofibroma", "#56B4E9", "#000000", "Dermatofibroma.", False),
    ClassInfo("VASC", "Vascular lesion", "#CC79A7", "#000000", "Vascular lesions.", False),
    ClassInfo("SCC", "Squamous cell carcinoma", "#7F3C8D", "#FFFFFF", "Squamous cells.", True),
)
FOUR_LEVELS = ("unsure", "rather unsure", "rather sure", "sure")


def probabilities(rng: random.Random, count: int) -> list[float]:
    """`count` probabilities (six decimals) that sum to 1 within rounding."""
    weights = [rng.random() + 0.01 for _ in range(count)]
    total = sum(weights)
    values = [round(w / total, 6) for w in weights]
    values[0] = round(1 - sum(values[1:]), 6)
    return values


def neighbour_aid(rng: random.Random, pool: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """One neighbour aid: `count` neighbours of distinct lesions and its vote at every k."""
    picked = rng.sample(pool, count)
    similarities = sorted((rng.uniform(0.3, 1.0) for _ in range(count)), reverse=True)
    neighbours = [
        {
            "rank": rank,
            "image_id": item["image_id"],
            "lesion_id": item["lesion_id"],
            "truth": item["truth"],
            "similarity": round(similarity, 4),
            "image": item["image"],
        }
        for rank, (item, similarity) in enumerate(zip(picked, similarities, strict=True), 1)
    ]
    truths = [n["truth"] for n in neighbours]
    votes = {str(k): majority_vote(truths[:k]) for k in range(1, count + 1)}
    return {"neighbours": neighbours, "majority_vote": votes}


def nearest_by_class(
    rng: random.Random, pool: list[dict[str, Any]], codes: Sequence[str], count: int
) -> dict[str, list[dict[str, Any]]]:
    """The `class_neighbours` of one aid: up to `count` of the pool's images of each class,
    similarity falling with rank."""
    out: dict[str, list[dict[str, Any]]] = {}
    for code in codes:
        of_class = [item for item in pool if item["truth"] == code]
        items = rng.sample(of_class, min(count, len(of_class)))
        similarities = sorted((rng.uniform(0.2, 0.9) for _ in items), reverse=True)
        out[code] = [
            {"rank": rank, **item, "similarity": round(similarity, 4)}
            for rank, (item, similarity) in enumerate(zip(items, similarities, strict=True), 1)
        ]
    return out


def make_bundle_v2(
    folder: Path,
    cases: int = 12,
    seed: int = 0,
    classes: Sequence[ClassInfo] = HAM10000,
    max_neighbours: int = 9,
    shown: int = 6,
    likert: Sequence[str] = LIKERT,
    aids: Sequence[str] = BUNDLE_AIDS,
    pool: int = 40,
    context: bool = False,
    class_neighbours: int = 0,
) -> Path:
    """Write a valid format-2 bundle: the given taxonomy, scale and aids, to folder. With
    `context`, the `context` extension too: each query's age, sex and body site, some unknown.
    With `class_neighbours` > 0, that extension: in each neighbour aid, up to that many of the
    pool's images of every class, most similar first."""
    rng = random.Random(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    codes = [info.code for info in classes]
    base = seed * 100000 + 7
    neighbour_pool = [
        {
            "image_id": f"ISIC_M{seed:02d}{index:05d}",
            "lesion_id": f"HAM_M{seed:02d}{index:05d}",
            "truth": codes[index % len(codes)],
            "image": write_image(images, jpeg_bytes(base + 50000 + index)),
        }
        for index in range(pool)
    ]
    queries = []
    for index in range(cases):
        upright = picture(base + 3 * index)
        overlay = picture(base + 3 * index + 1)
        found: dict[str, Any] = {}
        for aid in aids:
            if aid in NEIGHBOUR_AIDS:
                found[aid] = neighbour_aid(rng, neighbour_pool, max_neighbours)
                if class_neighbours:
                    found[aid]["class_neighbours"] = nearest_by_class(
                        rng, neighbour_pool, codes, class_neighbours
                    )
            elif aid == "probabilities":
                found[aid] = {model: probabilities(rng, len(codes)) for model in CLASSIFIERS}
            else:
                found[aid] = {
                    "image": write_image(images, encode(overlay)),
                    "image_rotated": write_image(images, encode(overlay.rotate(180))),
                }
        queries.append(
            {
                "case_key": hashlib.sha256(f"key2-{seed}-{index}".encode()).hexdigest()[:24],
                "image_id": f"ISIC_P{seed:02d}{index:05d}",
                "lesion_id": f"HAM_P{seed:02d}{index:05d}",
                "truth": codes[index % len(codes)],
                "image": write_image(images, encode(upright)),
                "image_rotated": write_image(images, encode(upright.rotate(180))),
                "aids": found,
            }
        )
        if context:
            queries[-1]["context"] = patient(index)
    with_lists = any(aid in NEIGHBOUR_AIDS for aid in aids)
    described = {
        "format_version": 2,
        "classes": [info.as_json() for info in classes],
        "likert": list(likert),
        "aids": list(aids),
        "max_neighbours": max_neighbours if with_lists else 0,
        "neighbours": shown if with_lists else 0,
        "web_image_size": SIZE,
        "provenance": {
            "run": "tests",
            "metrics": {"retrieval": {"se_cbir": {"6": {"macro": 0.5}}}},
        },
        "counts": {
            "queries_before": cases,
            "queries_after": cases,
            "dropped": {},
            "images": len(list(images.iterdir())),
        },
    }
    extensions = [
        name for name, on in (("context", context), ("class_neighbours", class_neighbours)) if on
    ]
    if extensions:
        described["extensions"] = extensions
    (folder / "manifest.json").write_text(json.dumps(described, indent=2, sort_keys=True))
    (folder / "queries.json").write_text(json.dumps(queries, indent=2))
    return folder


SITES = ("back", "face", "lower extremity", None)


def patient(index: int) -> dict[str, Any]:
    """The patient context of query `index` in a bundle with the extension: every fifth age,
    every third sex and every fourth site unknown."""
    return {
        "age": None if index % 5 == 4 else 30 + 5 * (index % 10),
        "sex": ("female", "male", None)[index % 3],
        "site": SITES[index % 4],
    }


def store(folder: Path, data: bytes) -> str:
    import hashlib

    name = hashlib.sha256(data).hexdigest()[:32] + ".jpg"
    (folder / "images" / name).write_bytes(data)
    return f"images/{name}"
