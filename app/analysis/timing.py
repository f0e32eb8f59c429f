"""Time per case per condition: median and quartiles of the seconds an answer took.

Times come from the answers' `seconds` (from the case appearing to the answer) less
`hidden_seconds` (of that, the page was hidden: another tab, a locked screen). A case left
open while the reader was away would dominate a mean, so times above `CEILING_SECONDS` count
as the ceiling (and how many did is reported); medians and quartiles barely move with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from app.analysis.responses import Array, Responses

# Five minutes: far beyond the ~10-60 s a dermoscopic image takes; longer means away.
CEILING_SECONDS = 300.0


def _quartiles(seconds: Array) -> dict[str, Any]:
    """Answers, capped answers, median and quartiles of seconds (None when there are none)."""
    values = seconds[np.isfinite(seconds)]
    capped = int((values > CEILING_SECONDS).sum())
    values = np.minimum(values, CEILING_SECONDS)
    if values.size == 0:
        return {"answers": 0, "capped": 0, "median": None, "q1": None, "q3": None}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {
        "answers": int(values.size),
        "capped": capped,
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
    }


def timing(
    responses: Responses, groups: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, Any]:
    """Seconds per answer per condition, pooled and per group of each reader grouping."""
    seconds = responses.answer_seconds
    out: dict[str, Any] = {
        "description": (
            "Seconds from a case appearing to its answer, per condition: the median and the "
            f"middle half (quartiles). Answers over {CEILING_SECONDS:.0f} s count as "
            f"{CEILING_SECONDS:.0f} s (the reader was most likely away); time with the page "
            "hidden (another tab, a locked screen) is left out."
        ),
        "ceiling_seconds": CEILING_SECONDS,
        "conditions": {},
    }
    for index, name in enumerate(responses.conditions):
        chosen = responses.condition == index
        block: dict[str, Any] = {"all": _quartiles(seconds[chosen]), "groups": {}}
        for grouping, label_of in (groups or {}).items():
            labels = np.asarray(
                [label_of.get(reader, "unknown") for reader in responses.readers], dtype=object
            )
            of_answer = labels[responses.reader]
            block["groups"][grouping] = {
                g: _quartiles(seconds[chosen & (of_answer == g)]) for g in sorted(set(labels))
            }
        out["conditions"][name] = block
    return out
