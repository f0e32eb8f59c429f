"""A study's conditions: unaided, or one of its bundle's aids with its options. Pure.

A condition is stored as a small dict in `Study.conditions` (the order is the design's: the
thesis replays conditions[0] then conditions[1]). Its `key` names it in answers, exports and
the analysis: "unaided", "se_cbir", "cbir", "probabilities" for the plain forms, with the
options that differ from the defaults appended ("se_cbir_k3", "cbir_unlabelled",
"probabilities_rgb", "se_cbir_saliency"), so two conditions of one study never share a key.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from studybundle.vocabulary import CLASSIFIERS, CONDITION_AIDS, NEIGHBOUR_AIDS, Aid, Classifier

# The names and their words are studybundle.vocabulary's; these are the ones conditions use.
UNAIDED = Aid.UNAIDED.value
PROBABILITIES = Aid.PROBABILITIES.value
AIDS = CONDITION_AIDS
DEFAULT_K = 6  # the thesis's six neighbours
DEFAULT_CLASSIFIER = Classifier.RGB_SALIENCY.value  # the 4-channel model (image + saliency)


class ConditionError(ValueError):
    """A condition that the study's bundle cannot show, or that makes no sense."""


@dataclass(frozen=True)
class Condition:
    """What an aided (or unaided) reading shows beside the query."""

    aid: str = UNAIDED
    k: int = 0  # neighbours shown (neighbour aids only)
    labelled: bool = True  # neighbours with their class, or images only
    classifier: str = ""  # whose probabilities (probabilities only)
    saliency: bool = False  # the query's saliency overlay, as a toggle
    # The patient's age, sex and body site beside the case (the bundle's `context`): not an
    # aid of the AI, so it leaves `aided` alone, but part of what the reading shows.
    context: bool = False

    def __post_init__(self) -> None:
        if self.aid == PROBABILITIES and not self.classifier:
            object.__setattr__(self, "classifier", DEFAULT_CLASSIFIER)  # the 4-channel model

    @property
    def shows_neighbours(self) -> bool:
        """Whether the reading shows similar images."""
        return self.aid in NEIGHBOUR_AIDS

    @property
    def can_mislead(self) -> bool:
        """Whether a faulty-aid probe can be made of it (neighbours or probabilities)."""
        return self.shows_neighbours or self.aid == PROBABILITIES

    @property
    def aided(self) -> bool:
        """Whether anything beyond the query is shown."""
        return self.aid != UNAIDED or self.saliency

    @property
    def key(self) -> str:
        """The condition's name in answers and exports (see the module's docstring)."""
        parts = [self.aid]
        if self.shows_neighbours:
            if self.k != DEFAULT_K:
                parts.append(f"k{self.k}")
            if not self.labelled:
                parts.append("unlabelled")
        if self.aid == PROBABILITIES and self.classifier != DEFAULT_CLASSIFIER:
            parts.append(self.classifier)
        if self.saliency:
            parts.append("saliency")
        if self.context:
            parts.append("context")
        return "_".join(parts)

    @property
    def label(self) -> str:
        """The condition in words, for organisers."""
        text = Aid(self.aid).label
        if self.shows_neighbours:
            kind = "labelled" if self.labelled else "unlabelled"
            text += f", {self.k} {kind}"
        if self.aid == PROBABILITIES:
            text += f" ({Classifier(self.classifier).label})"
        if self.saliency:
            text += " + saliency overlay"
        if self.context:
            text += " + age, sex and body site"
        return text

    @property
    def short(self) -> str:
        """The condition in a few words, for table headings ("SE-CBIR 6", "CBIR 3 unlabelled")."""
        text = Aid(self.aid).short
        if self.shows_neighbours:
            text += f" {self.k}" + ("" if self.labelled else " unlabelled")
        if self.aid == PROBABILITIES:
            text += f" ({Classifier(self.classifier).short})"
        if self.saliency:
            text += " + saliency"
        if self.context:
            text += " + context"
        return text

    def to_json(self) -> dict[str, Any]:
        """The dict stored in `Study.conditions`."""
        return asdict(self)


def parse(item: Mapping[str, Any]) -> Condition:
    """A condition from its stored dict, normalised (options that do not apply are reset)."""
    aid = item.get("aid", UNAIDED)
    if aid not in AIDS:
        raise ConditionError(f"unknown aid {aid!r}; expected one of {', '.join(AIDS)}")
    k = item.get("k", DEFAULT_K if aid in NEIGHBOUR_AIDS else 0)
    if aid in NEIGHBOUR_AIDS:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConditionError(f"{aid}: the number of neighbours must be a whole number >= 1")
    else:
        k = 0
    classifier = (item.get("classifier") or DEFAULT_CLASSIFIER) if aid == PROBABILITIES else ""
    if aid == PROBABILITIES and classifier not in CLASSIFIERS:
        raise ConditionError(f"unknown classifier {classifier!r}")
    labelled = bool(item.get("labelled", True)) if aid in NEIGHBOUR_AIDS else True
    return Condition(
        aid,
        k,
        labelled,
        classifier,
        bool(item.get("saliency", False)),
        bool(item.get("context", False)),
    )


@dataclass(frozen=True)
class Available:
    """What a study's bundle can show: neighbour aids with their longest list, classifiers."""

    neighbours: Mapping[str, int]  # aid -> the most neighbours every case has
    classifiers: Sequence[str]
    saliency: bool
    context: bool = False  # the patient's age, sex and body site (the `context` extension)


def check(conditions: Sequence[Condition], available: Available) -> list[str]:
    """Every problem of a study's list of conditions, in words ([] when it is fine)."""
    problems = []
    if len(conditions) < 1:
        problems.append("A study needs at least one condition.")
    keys = [c.key for c in conditions]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"The condition {key} is listed twice.")
    for condition in conditions:
        if condition.shows_neighbours:
            most = available.neighbours.get(condition.aid, 0)
            if most == 0:
                problems.append(f"The bundle has no {condition.aid} neighbours.")
            elif condition.k > most:
                problems.append(
                    f"{condition.label}: the bundle has only {most} {condition.aid} neighbours."
                )
        if condition.aid == PROBABILITIES and condition.classifier not in available.classifiers:
            problems.append(f"The bundle has no probabilities of the {condition.classifier} model.")
        if condition.saliency and not available.saliency:
            problems.append("The bundle has no saliency overlays.")
        if condition.context and not available.context:
            problems.append("The bundle carries no age, sex or body site of its cases.")
    return problems


def thesis(k: int = DEFAULT_K) -> list[Condition]:
    """The thesis's two conditions: unaided, then SE-CBIR with k labelled neighbours."""
    return [Condition(), Condition(Aid.SE_CBIR.value, k)]


def three_arm(k: int = DEFAULT_K) -> list[Condition]:
    """The comparison the thesis asks for: unaided, plain CBIR and SE-CBIR at the same k."""
    return [Condition(), Condition(Aid.CBIR.value, k), Condition(Aid.SE_CBIR.value, k)]
