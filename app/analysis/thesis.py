"""Convert the thesis study's reader files into the long responses CSV.

`python -m app.analysis.thesis READERS_DIR MAJORITY_JSON --out responses.csv`

Each `evaluation_N.json` holds one reader's 100 cases as parallel lists: `ImgName`
(`ret_<image_id>.jpg`), `Diagnosis` (truth), `Image` / `ImConf` (Task 1 answer and confidence),
`Retrieval` / `RetConf` (Task 2). The majority vote comes from `majority_vote.json` (keys
`<image_id>.png`), not from the files' older `Majority` field, as in the thesis table.
Readers are named PCP1..PCP9 in the thesis's order of files.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.analysis.responses import COLUMNS

# Thesis Table 4.II numbers its participants in this order of files: PCP1 = evaluation_1, ...
THESIS_ORDER: tuple[int, ...] = (1, 4, 6, 8, 9, 5, 2, 7, 3)
FIELDS = ("ImgName", "Diagnosis", "Image", "ImConf", "Retrieval", "RetConf")
OUTPUT_COLUMNS = (*COLUMNS, "source")


class ThesisFormatError(ValueError):
    """A reader file or the majority-vote file is missing or not in the expected format."""


def _load_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a ThesisFormatError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ThesisFormatError(f"{path}: file not found") from None
    except (OSError, ValueError) as error:
        raise ThesisFormatError(f"{path}: not readable JSON ({error})") from None


def _image_id(name: str, path: Path, index: int) -> str:
    """`ret_ISIC_0024306.jpg` -> `ISIC_0024306`."""
    if not (isinstance(name, str) and name.startswith("ret_") and name.endswith(".jpg")):
        raise ThesisFormatError(f"{path}: ImgName[{index}] = {name!r} is not ret_<image_id>.jpg")
    return name[len("ret_") : -len(".jpg")]


def thesis_rows(
    readers_dir: str | Path, majority_json: str | Path, order: Sequence[int] = THESIS_ORDER
) -> list[dict[str, Any]]:
    """The thesis answers as responses rows: per reader, all Task 1 answers, then Task 2."""
    readers_dir = Path(readers_dir)
    majority = _load_json(Path(majority_json))
    if not isinstance(majority, dict):
        raise ThesisFormatError(f"{majority_json}: expected an object {{image.png: class}}")
    rows: list[dict[str, Any]] = []
    for number, file_number in enumerate(order, start=1):
        path = readers_dir / f"evaluation_{file_number}.json"
        data = _load_json(path)
        missing = [f for f in FIELDS if not isinstance(data, dict) or f not in data]
        if missing:
            raise ThesisFormatError(f"{path}: missing field(s) {', '.join(missing)}")
        lengths = {len(data[f]) for f in FIELDS}
        if len(lengths) != 1:
            raise ThesisFormatError(f"{path}: the lists {', '.join(FIELDS)} differ in length")
        image_ids = [_image_id(name, path, i) for i, name in enumerate(data["ImgName"])]
        votes = []
        for image_id in image_ids:
            vote = majority.get(f"{image_id}.png")
            if vote is None:
                raise ThesisFormatError(f"{majority_json}: no majority vote for {image_id}")
            votes.append(vote)
        for task, answer, confidence in ((1, "Image", "ImConf"), (2, "Retrieval", "RetConf")):
            for k, image_id in enumerate(image_ids):
                rows.append(
                    {
                        "reader": f"PCP{number}",
                        "image_id": image_id,
                        "truth": data["Diagnosis"][k],
                        "task": task,
                        "diagnosis": data[answer][k],
                        "confidence": data[confidence][k],
                        "majority_vote": votes[k],
                        "source": path.name,
                    }
                )
    return rows


def write_rows(rows: Sequence[dict[str, Any]], out: str | Path) -> None:
    """Write responses rows as a CSV with the standard columns (plus `source`)."""
    with open(out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=OUTPUT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Convert the thesis reader files to a responses CSV; exit code 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m app.analysis.thesis",
        description="Convert the thesis study's evaluation_N.json reader files into the "
        "long responses CSV that `python -m app.analysis` reads.",
    )
    parser.add_argument("readers_dir", help="folder with evaluation_1.json .. evaluation_9.json")
    parser.add_argument("majority_json", help="majority_vote.json ({image.png: class})")
    parser.add_argument("--out", required=True, help="responses CSV to write")
    args = parser.parse_args(argv)
    try:
        rows = thesis_rows(args.readers_dir, args.majority_json)
    except ThesisFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_rows(rows, args.out)
    print(
        f"wrote {len(rows)} answers of {len(THESIS_ORDER)} readers to {args.out}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
