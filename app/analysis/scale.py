"""A study's confidence scale as the analysis sees it: levels 1 to N and, when known, their labels.

A study bundle allows scales of `MIN_LIKERT` to `MAX_LIKERT` levels (`studybundle.limits`, the
one home of the bound) and names them in its manifest's `likert`, level 1 first; the thesis
used five. The dashboard passes the study's own labels, the command line a bundle manifest's
(`--taxonomy MANIFEST`) or a number of levels (`--levels N`); a responses file alone has the
levels present: 1 to the highest confidence given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from app.analysis.responses import Responses
from app.analysis.results import ConfidenceScale
from studybundle.limits import MAX_LIKERT, MIN_LIKERT


@dataclass(frozen=True)
class Scale:
    """The number of confidence levels and their labels, level 1 first (empty: not known)."""

    levels: int
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check the length against the bundle's bounds and the labels against the length."""
        if not MIN_LIKERT <= self.levels <= MAX_LIKERT:
            raise ValueError(
                f"a confidence scale has {MIN_LIKERT} to {MAX_LIKERT} levels, not {self.levels}"
            )
        if self.labels and len(self.labels) != self.levels:
            raise ValueError(f"{len(self.labels)} labels for a scale of {self.levels} levels")

    @classmethod
    def of_labels(cls, labels: Iterable[str]) -> Scale:
        """The scale a bundle's `likert` labels describe."""
        listed = tuple(str(label) for label in labels)
        return cls(len(listed), listed)

    def label(self, level: int) -> str:
        """The label of `level` (1-based); '' when the labels are not known."""
        return self.labels[level - 1] if self.labels else ""

    def to_json(self) -> ConfidenceScale:
        """The scale as the analysis result carries it."""
        return {"levels": self.levels, "labels": list(self.labels)}


def scale_of(responses: Responses, scale: Scale | None = None) -> Scale:
    """The confidence scale of `responses`: `scale` when given, else the one they were read
    with, else the levels present (1 to the highest confidence, at least a bundle's shortest).

    ValueError when `scale` is not the scale the responses were checked against or is shorter
    than a confidence given (reading them with `levels=` names the row).
    """
    highest = int(np.max(responses.confidence)) if len(responses) else 0
    if scale is None:
        return Scale(responses.levels or max(highest, MIN_LIKERT))
    if responses.levels not in (None, scale.levels):
        raise ValueError(
            f"the responses were checked against a scale of {responses.levels} levels, not "
            f"the {scale.levels} given"
        )
    if highest > scale.levels:
        raise ValueError(
            f"a confidence of {highest} is beyond the scale of {scale.levels} levels given: "
            "pass levels= to read_responses / responses_from_rows, which names the row"
        )
    return scale
