"""metrics.json typed: what a training run measured, as the pipeline writes it and as a
bundle's `provenance.metrics` carries it to the app (docs/bundle.md).

The pipeline checks its metrics.json with `Metrics.from_json` and writes `to_json()`, so a key
renamed on one side fails there or in a test instead of leaving a blank cell in the app; the
app and the bundle check read it with `read_metrics`, which keeps what is well formed and names
the rest. Every top-level key is optional: runs made before a key existed (and hand-made
bundles) still read. Keys this module does not know are tolerated and left out of the record.
A figure that is not a finite number (NaN, a boolean, text) is refused, or None when read
leniently; `to_json` leaves out every None.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from studybundle.errors import BundleError, Problems
from studybundle.jsonio import finite_number

T = TypeVar("T")
Figure = float | None  # a figure read leniently: None when the file's value was not a number
DIFFERENCE = "true_class - predicted_class"  # label_channel's key of its difference
MISSING: Any = object()  # what a required key that is absent reads as


class MetricsError(BundleError):
    """A metrics.json that does not match the record; the message lists its problems."""


@dataclass(frozen=True)
class Classifier:
    """One classifier on the test split."""

    accuracy: Figure
    macro_sensitivity: Figure


@dataclass(frozen=True)
class Precision:
    """One retrieval system at one k: P@k per class and their macro average (AP@k)."""

    macro: Figure
    classes: Mapping[str, Figure] = field(default_factory=dict)


@dataclass(frozen=True)
class Interval:
    """A difference of macro AP@k with its bootstrap interval."""

    estimate: Figure
    ci_low: Figure
    ci_high: Figure


ByK = Mapping[int, T]  # keyed by k (in JSON, its decimal text)


@dataclass(frozen=True)
class SeedFigures:
    """One training seed's figures: classifiers, macro AP@k per system and k, and SE-CBIR's
    difference from each baseline per k."""

    classifiers: Mapping[str, Classifier]
    retrieval: Mapping[str, ByK[Figure]]
    comparisons: Mapping[str, ByK[Figure]]


@dataclass(frozen=True)
class Bootstrap:
    """How the comparisons' intervals were drawn (the last three since paired seeds)."""

    draws: int | None
    stratified_by: str | None
    interval: Figure
    seed: int | None
    resampled: str | None = None
    lone_lesion_class: str | None = None
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LabelChannel:
    """SE-CBIR with the bank's training maps of the true or of the predicted class."""

    bank_maps: str | None  # the arm that Metrics.retrieval["se_cbir"] is
    train_images: int | None
    train_maps_differing: int | None
    retrieval: Mapping[str, ByK[Precision]]
    difference: ByK[Interval]  # true_class minus predicted_class


@dataclass(frozen=True)
class Metrics:
    """metrics.json: None (or absent) for what the run did not write."""

    classifiers: Mapping[str, Classifier] | None = None
    retrieval: Mapping[str, ByK[Precision]] | None = None
    k: tuple[int, ...] | None = None
    primary_k: int | None = None
    exclude_same_lesion: bool | None = None
    queries: int | None = None
    bank: int | None = None
    majority_vote_accuracy_at_6: Figure = None
    majority_vote_accuracy_at_6_by_model: Mapping[str, Figure] | None = None
    comparisons: Mapping[str, ByK[Interval]] | None = None
    per_seed: Mapping[int, SeedFigures] | None = None
    bootstrap: Bootstrap | None = None
    label_channel: LabelChannel | None = None

    @classmethod
    def from_json(cls, value: Any) -> "Metrics":
        """The record of a metrics.json, or MetricsError naming every problem."""
        record, problems = read_metrics(value)
        Problems(problems).raise_if_any(MetricsError)
        return record

    def to_json(self) -> dict[str, Any]:
        """The metrics.json object (None left out), as the pipeline writes it."""
        return _drop_none(
            {
                "classifiers": _named(self.classifiers, _classifier_json),
                "retrieval": _named(self.retrieval, _by_k_json(_precision_json)),
                "k": None if self.k is None else list(self.k),
                "primary_k": self.primary_k,
                "exclude_same_lesion": self.exclude_same_lesion,
                "queries": self.queries,
                "bank": self.bank,
                "majority_vote_accuracy_at_6": self.majority_vote_accuracy_at_6,
                "majority_vote_accuracy_at_6_by_model": _named(
                    self.majority_vote_accuracy_at_6_by_model, _same
                ),
                "comparisons": _named(self.comparisons, _by_k_json(_interval_json)),
                "per_seed": None
                if self.per_seed is None
                else {str(seed): _seed_json(item) for seed, item in self.per_seed.items()},
                "bootstrap": None if self.bootstrap is None else _bootstrap_json(self.bootstrap),
                "label_channel": None
                if self.label_channel is None
                else _label_channel_json(self.label_channel),
            }
        )


# Writing.


def _drop_none(value: dict[str, Any]) -> dict[str, Any]:
    """`value` without its None entries (what a run did not write stays absent)."""
    return {key: item for key, item in value.items() if item is not None}


def _same(value: T) -> T:
    """A value that is already JSON."""
    return value


def _named(value: Mapping[str, T] | None, write: Callable[[T], Any]) -> dict[str, Any] | None:
    """A mapping by name in JSON (None stays None)."""
    return None if value is None else _drop_none({k: write(v) for k, v in value.items()})


def _by_k_json(write: Callable[[T], Any]) -> Callable[[ByK[T]], dict[str, Any]]:
    """A writer of a mapping by k: its keys as decimal text, as JSON objects need."""
    return lambda by_k: _drop_none({str(k): write(v) for k, v in by_k.items()})


def _classifier_json(item: Classifier) -> dict[str, Any]:
    return _drop_none({"accuracy": item.accuracy, "macro_sensitivity": item.macro_sensitivity})


def _precision_json(item: Precision) -> dict[str, Any]:
    return _drop_none({**item.classes, "macro": item.macro})


def _interval_json(item: Interval) -> dict[str, Any]:
    return _drop_none({"estimate": item.estimate, "ci_low": item.ci_low, "ci_high": item.ci_high})


def _seed_json(item: SeedFigures) -> dict[str, Any]:
    figures = _by_k_json(_same)
    return {
        "classifiers": _named(item.classifiers, _classifier_json),
        "retrieval": _named(item.retrieval, figures),
        "comparisons": _named(item.comparisons, figures),
    }


def _bootstrap_json(item: Bootstrap) -> dict[str, Any]:
    return _drop_none(
        {
            "draws": item.draws,
            "stratified_by": item.stratified_by,
            "interval": item.interval,
            "seed": item.seed,
            "resampled": item.resampled,
            "lone_lesion_class": item.lone_lesion_class,
            "seeds": None if item.seeds is None else list(item.seeds),
        }
    )


def _label_channel_json(item: LabelChannel) -> dict[str, Any]:
    return _drop_none(
        {
            "bank_maps": item.bank_maps,
            "train_images": item.train_images,
            "train_maps_differing": item.train_maps_differing,
            "retrieval": _named(item.retrieval, _by_k_json(_precision_json)),
            DIFFERENCE: _by_k_json(_interval_json)(item.difference),
        }
    )


# Reading.


class _Reader:
    """Reads parts of a metrics.json leniently, naming each problem with where it is."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, what: str) -> None:
        """Record that the value at `where` is not what the record needs."""
        self.problems.append(f"{where} {what}")

    def wrong(self, value: Any, where: str, wanted: str) -> None:
        """Record that the value at `where` is missing or not `wanted`."""
        if value is MISSING:
            self.problem(where, "is missing")
        else:
            self.problem(where, f"is {_shown(value)}, not {wanted}")

    def figure(self, value: Any, where: str) -> Figure:
        """A finite number (not a boolean), else None."""
        if finite_number(value):
            return value
        self.wrong(value, where, "a finite number")
        return None

    def integer(self, value: Any, where: str) -> int | None:
        """An integer of at least 0 (not a boolean), else None."""
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self.wrong(value, where, "a whole number of at least 0")
        return None

    def text(self, value: Any, where: str) -> str | None:
        """A string, else None."""
        if isinstance(value, str):
            return value
        self.wrong(value, where, "a text")
        return None

    def flag(self, value: Any, where: str) -> bool | None:
        """true or false, else None."""
        if isinstance(value, bool):
            return value
        self.wrong(value, where, "true or false")
        return None

    def object(self, value: Any, where: str) -> dict[str, Any] | None:
        """A JSON object, else None."""
        if isinstance(value, dict):
            return value
        self.wrong(value, where, "an object")
        return None

    def integers(self, value: Any, where: str) -> tuple[int, ...] | None:
        """A list of whole numbers, else None."""
        if not isinstance(value, list):
            self.wrong(value, where, "a list of whole numbers")
            return None
        found = [self.integer(item, f"{where}[{n}]") for n, item in enumerate(value)]
        return tuple(item for item in found if item is not None)

    def named(
        self, value: Any, where: str, read: Callable[[Any, str], T | None]
    ) -> dict[str, T] | None:
        """An object of items by name; an item that does not read is left out."""
        found = self.object(value, where)
        if found is None:
            return None
        items = {name: read(item, f"{where}.{name}") for name, item in found.items()}
        return {name: item for name, item in items.items() if item is not None}

    def by_k(
        self, value: Any, where: str, read: Callable[[Any, str], T | None], start: int = 1
    ) -> dict[int, T] | None:
        """An object keyed by k (decimal text of a whole number from `start`); a key or an
        item that does not read is left out."""
        found = self.object(value, where)
        if found is None:
            return None
        result: dict[int, T] = {}
        for key, item in found.items():
            digits = isinstance(key, str) and key.isascii() and key.isdigit()
            number = int(key) if digits else None
            if number is None or str(number) != key or number < start:
                self.problem(f"{where}[{key!r}]", f"is not keyed by a whole number from {start}")
                continue
            read_item = read(item, f"{where}.{key}")
            if read_item is not None:
                result[number] = read_item
        return result

    def fields(self, value: Any, where: str) -> "_Fields | None":
        """The keys of a JSON object, to be read one by one (None if it is not an object)."""
        found = self.object(value, where)
        return None if found is None else _Fields(found, where)

    def classifier(self, value: Any, where: str) -> Classifier | None:
        """{accuracy, macro_sensitivity}."""
        if (found := self.fields(value, where)) is None:
            return None
        return Classifier(
            found.need("accuracy", self.figure), found.need("macro_sensitivity", self.figure)
        )

    def precision(self, value: Any, where: str) -> Precision:
        """{class: P@k, ..., macro: AP@k}; not an object: a Precision of None (the k stays)."""
        if (found := self.fields(value, where)) is None:
            return Precision(None)
        classes = {name: found.need(name, self.figure) for name in found.found if name != "macro"}
        return Precision(found.need("macro", self.figure), classes)

    def retrieval(self, value: Any, where: str) -> dict[int, Precision] | None:
        """One retrieval system's Precision by k."""
        return self.by_k(value, where, self.precision)

    def interval(self, value: Any, where: str) -> Interval | None:
        """{estimate, ci_low, ci_high}."""
        if (found := self.fields(value, where)) is None:
            return None
        return Interval(*(found.need(key, self.figure) for key in INTERVAL_KEYS))

    def intervals(self, value: Any, where: str) -> dict[int, Interval] | None:
        """Intervals by k."""
        return self.by_k(value, where, self.interval)

    def figures(self, value: Any, where: str) -> dict[int, Figure] | None:
        """Plain figures by k."""
        return self.by_k(value, where, self.figure)

    def classifiers(self, value: Any, where: str) -> dict[str, Classifier] | None:
        """Classifiers by name."""
        return self.named(value, where, self.classifier)

    def seed(self, value: Any, where: str) -> SeedFigures | None:
        """per_seed's item: classifiers, retrieval and comparisons."""
        if (found := self.fields(value, where)) is None:
            return None
        return SeedFigures(
            found.need("classifiers", self.classifiers) or {},
            found.need("retrieval", lambda v, w: self.named(v, w, self.figures)) or {},
            found.need("comparisons", lambda v, w: self.named(v, w, self.figures)) or {},
        )

    def bootstrap(self, value: Any, where: str) -> Bootstrap | None:
        """How the intervals were drawn; resampled, lone_lesion_class and seeds optional."""
        if (found := self.fields(value, where)) is None:
            return None
        return Bootstrap(
            draws=found.need("draws", self.integer),
            stratified_by=found.need("stratified_by", self.text),
            interval=found.need("interval", self.figure),
            seed=found.need("seed", self.integer),
            resampled=found.may("resampled", self.text),
            lone_lesion_class=found.may("lone_lesion_class", self.text),
            seeds=found.may("seeds", self.integers),
        )

    def label_channel(self, value: Any, where: str) -> LabelChannel | None:
        """The label-channel diagnostic."""
        if (found := self.fields(value, where)) is None:
            return None
        return LabelChannel(
            bank_maps=found.need("bank_maps", self.text),
            train_images=found.need("train_images", self.integer),
            train_maps_differing=found.need("train_maps_differing", self.integer),
            retrieval=found.need("retrieval", lambda v, w: self.named(v, w, self.retrieval)) or {},
            difference=found.need(DIFFERENCE, self.intervals) or {},
        )


@dataclass(frozen=True)
class _Fields:
    """One JSON object being read key by key, each key's place named after the object's."""

    found: dict[str, Any]
    where: str

    def need(self, key: str, read: Callable[[Any, str], T | None]) -> T | None:
        """A key that must be there (absent: a problem)."""
        return read(self.found.get(key, MISSING), f"{self.where}.{key}")

    def may(self, key: str, read: Callable[[Any, str], T | None]) -> T | None:
        """A key that may be absent or null (a key older runs did not write)."""
        value = self.found.get(key)
        return None if value is None else read(value, f"{self.where}.{key}")


INTERVAL_KEYS = ("estimate", "ci_low", "ci_high")


def _shown(value: Any) -> str:
    """A value in a problem's message, cut short."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more digits than Python turns into text
        return "a huge integer"
    return text if len(text) <= 40 else text[:37] + "..."


def read_metrics(value: Any, where: str = "metrics") -> tuple[Metrics, list[str]]:
    """A metrics.json's record read leniently, and its problems (empty when it is well
    formed): a part that does not read is left out, a figure that does not is None. A value
    that is not an object is MetricsError."""
    if not isinstance(value, dict):
        raise MetricsError(f"{where} must be an object")
    reader = _Reader()
    found = _Fields(value, where)
    return Metrics(
        classifiers=found.may("classifiers", reader.classifiers),
        retrieval=found.may("retrieval", lambda v, w: reader.named(v, w, reader.retrieval)),
        k=found.may("k", reader.integers),
        primary_k=found.may("primary_k", reader.integer),
        exclude_same_lesion=found.may("exclude_same_lesion", reader.flag),
        queries=found.may("queries", reader.integer),
        bank=found.may("bank", reader.integer),
        majority_vote_accuracy_at_6=found.may("majority_vote_accuracy_at_6", reader.figure),
        majority_vote_accuracy_at_6_by_model=found.may(
            "majority_vote_accuracy_at_6_by_model", lambda v, w: reader.named(v, w, reader.figure)
        ),
        comparisons=found.may("comparisons", lambda v, w: reader.named(v, w, reader.intervals)),
        per_seed=found.may("per_seed", lambda v, w: reader.by_k(v, w, reader.seed, start=0)),
        bootstrap=found.may("bootstrap", reader.bootstrap),
        label_channel=found.may("label_channel", reader.label_channel),
    ), reader.problems
