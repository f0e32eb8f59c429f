"""What a served file still tells a reader who holds the public dataset, before and after keying.

`python benchmarks/served_images.py [--images 600] [--size 128] [--web 256] [--cases 100]`

Demo-like data: the synthetic dataset of `make demo` (`python -m training synth`, 128 px
images), a bundle written by the pipeline's own `write_bundle` at the demo preset's web size
(256 px) with `--cases` queries, six SE-CBIR neighbours each (of other lesions, drawn at
random: retrieval plays no part here) and a saliency overlay per query (a random smooth map),
imported into a throw-away SQLite study with a fixed SECRET_KEY. Then the leak audit of
`flask study audit-leaks` (app.leakaudit) against the synthetic dataset:

- before: the files a plain import served (the bundle's images re-encoded deterministically,
  as imports did before issue 22);
- after: the keyed files this code serves (thumbnails included).

It prints, for each, how many cases, neighbour images and files each route identifies
(exact bytes, size, perceptual hash), how many served bytes a second deployment (another key)
shares, and the PSNR of every keyed image (not thumbnails) against the bundle's image it was
made from: min, median, mean.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from app.bundle import import_bundle, served_name  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.factory import create_app  # noqa: E402
from app.leakaudit import AuditResult, audit, public_table, served_files  # noqa: E402
from app.models import Study  # noqa: E402
from app.servedimages import key_image  # noqa: E402
from studybundle.images import reencode  # noqa: E402
from studybundle.vocabulary import CLASSIFIERS  # noqa: E402
from training.bundle import Neighbour, Query, QueryAids, QueryPool, write_bundle  # noqa: E402
from training.data import CLASSES, load_metadata  # noqa: E402
from training.synth import write_synthetic  # noqa: E402

NEIGHBOURS = 6


def demo_bundle(dataset: Path, out: Path, cases: int, web: int, seed: int) -> Path:
    """A bundle of `cases` queries from the synthetic dataset, as the pipeline writes it."""
    rows = load_metadata(dataset / "HAM10000_metadata.csv")
    paths = {path.stem: path for path in dataset.rglob("*.jpg")}
    rng = np.random.default_rng(seed)
    by_lesion: dict[str, dict[str, str]] = {}
    for row in rows:
        by_lesion.setdefault(row["lesion_id"], row)
    lesions = list(by_lesion.values())
    rng.shuffle(lesions)
    queries, bank = lesions[:cases], lesions[cases:]
    pool = []
    for row in queries:
        picked = rng.choice(len(bank), NEIGHBOURS, replace=False)
        similarities = np.sort(rng.uniform(0.5, 1.0, NEIGHBOURS))[::-1]
        neighbours = tuple(
            Neighbour(rank, bank[i]["image_id"], bank[i]["lesion_id"], bank[i]["dx"], float(s))
            for rank, (i, s) in enumerate(zip(picked, similarities, strict=True), start=1)
        )
        pool.append(Query(row["image_id"], row["lesion_id"], row["dx"], row["dx"], neighbours))
    saliency, probabilities = {}, {}
    for row in queries:
        coarse = rng.uniform(0, 255, (8, 8)).astype(np.uint8)
        saliency[row["image_id"]] = np.asarray(
            Image.fromarray(coarse).resize((64, 64), Image.Resampling.BICUBIC)
        )
        scores = rng.dirichlet(np.ones(len(CLASSES)))
        probabilities[row["image_id"]] = {model: scores.tolist() for model in CLASSIFIERS}
    return write_bundle(
        out,
        QueryPool(tuple(pool), before=len(pool)),
        paths,
        secret=b"benchmark case keys",
        web_image_size=web,
        provenance={"run": "benchmarks/served_images.py"},
        aids=QueryAids(probabilities, saliency),
    )


def psnr(first: np.ndarray, second: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two 8-bit images, in dB."""
    mse = float(((first.astype(float) - second.astype(float)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def pixels(data: bytes) -> np.ndarray:
    """The RGB pixels of JPEG bytes."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def show(title: str, result: AuditResult) -> None:
    """Print one audit."""
    print(f"\n{title}")
    for line in result.lines():
        print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    """Make the data, import it, audit before and after, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--web", type=int, default=256)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="served-images-") as scratch:
        root = Path(scratch)
        write_synthetic(root / "dataset", args.images, args.size, args.seed)
        bundle = demo_bundle(root / "dataset", root / "bundle", args.cases, args.web, args.seed)
        app = create_app(
            TestConfig,
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{scratch}/bench.sqlite",
                "STUDY_IMAGES": f"{scratch}/images",
                "SECRET_KEY": "benchmark deployment one",
            },
        )
        with app.app_context():
            db.create_all()
            began = time.perf_counter()
            study, _ = import_bundle(bundle, "Benchmark", app.config["STUDY_IMAGES"])
            imported = time.perf_counter() - began
            sources = {served_name(p.name): p for p in (bundle / "images").glob("*.jpg")}
            plain = root / "plain"
            plain.mkdir()
            for name, path in sources.items():
                (plain / name).write_bytes(reencode(path))
            began = time.perf_counter()
            table = public_table(root / "dataset", args.web)
            hashed = time.perf_counter() - began
            record = db.session.get(Study, study.id)
            assert record is not None
            print(
                f"{args.images} synthetic images ({args.size} px), bundle of {len(record.cases)}"
                f" cases at {args.web} px: {len(sources)} images, imported (keyed) in "
                f"{imported:.1f} s; attacker's table of {table.images} public images in "
                f"{hashed:.1f} s"
            )
            show(
                "before (plain re-encoding, as imports served until issue 22)",
                audit(record, table, served_files(record, plain)),
            )
            after = served_files(record)
            show("after (keyed)", audit(record, table, after))
            folder = Path(record.image_folder)

        other = root / "other-deployment"
        other.mkdir()
        for name, path in sources.items():
            key_image(path, other, name, secret="benchmark deployment two")
        mine = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.jpg")}
        theirs = {p.relative_to(other): p.read_bytes() for p in other.rglob("*.jpg")}
        shared = sum(theirs.get(name) == data for name, data in mine.items())
        same_size = sum(len(theirs.get(name, b"")) == len(data) for name, data in mine.items())
        public = {hashlib.sha256(p.read_bytes()).hexdigest() for p in sources.values()}
        equal_to_bundle = sum(hashlib.sha256(d).hexdigest() in public for d in mine.values())
        print(
            f"\nserved files: {len(mine)} ({len(after)} reachable from the study's rows); equal "
            f"to a bundle file: {equal_to_bundle}; equal to another deployment's: {shared}; "
            f"of the same size as another deployment's: {same_size}"
        )
        ratios = [
            psnr(pixels((folder / name).read_bytes()), pixels(path.read_bytes()))
            for name, path in sources.items()
        ]
        print(
            f"PSNR of the keyed images against the bundle's ({len(ratios)} images): min "
            f"{min(ratios):.1f} dB, median {statistics.median(ratios):.1f} dB, mean "
            f"{statistics.fmean(ratios):.1f} dB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
