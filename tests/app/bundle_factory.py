"""Small, valid study bundles for the app's tests: Pillow-drawn JPEGs, no TensorFlow.

`make_bundle(folder, cases=30, seed=0)` writes manifest.json, queries.json and images/ in the
format the app's importer reads; different seeds give different bundles (and digests).
"""

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from studybundle.taxonomy import HAM10000, HAM10000_CODES, LIKERT

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
