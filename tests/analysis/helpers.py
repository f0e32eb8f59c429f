"""Small builders of responses rows for the analysis tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from app.analysis.responses import COLUMNS


def answer(
    reader: str,
    image_id: str,
    truth: str,
    task: int,
    diagnosis: str,
    confidence: int,
    majority_vote: str | None = None,
) -> dict[str, Any]:
    """One responses row (the majority vote defaults to the truth)."""
    return {
        "reader": reader,
        "image_id": image_id,
        "truth": truth,
        "task": task,
        "diagnosis": diagnosis,
        "confidence": confidence,
        "majority_vote": truth if majority_vote is None else majority_vote,
    }


def to_csv(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    """Rows as CSV text with the given columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def reference_rows(path: Path) -> list[dict[str, Any]]:
    """A `../shared/reference/mrmc/` CSV as responses rows (`case` -> image_id, `modality` ->
    condition; the majority vote, absent from the synthetic sets, defaults to the truth)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            {
                "reader": row["reader"],
                "image_id": row["case"],
                "truth": row["truth"],
                "condition": row["modality"],
                "diagnosis": row["diagnosis"],
                "confidence": row["confidence"],
                "majority_vote": row.get("majority_vote") or row["truth"],
            }
            for row in csv.DictReader(handle)
        ]
