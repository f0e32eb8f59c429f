"""The names of aids, classifiers and designs, each with its words: one home for all of them.

The bundle, the app, the analysis and training name an aid, a classifier or a design by the
member's value ("se_cbir", "rgb_saliency", "crossover"): that string is what the database
stores and what bundles and exports write, so a value never changes. Each member also carries
the words people see, the way grand-challenge's reader studies keep an answer type's choices
beside its key: `label` (organisers' long name), `short` (table headings) and, where readers
are told about it, `reader` (their words, without the method's name). The words are
properties over a table right below each enum (not extra values of the members), so that
`Aid("cbir")` stays the plain lookup type checkers know.

The members are `StrEnum`s, so a member compares equal to its value; data keeps the plain
value (`Aid.CBIR.value`), so that no repr of an enum ends up in a file or a message.
"""

from __future__ import annotations

import enum


class Aid(enum.StrEnum):
    """What a reading may show beside the query.

    A bundle carries the four aids of `BUNDLE_AIDS`; a study's condition shows one of the
    `CONDITION_AIDS` (unaided included), with the saliency overlay as an option of its own.
    """

    UNAIDED = "unaided"
    SE_CBIR = "se_cbir"
    CBIR = "cbir"
    PROBABILITIES = "probabilities"
    SALIENCY = "saliency"

    @property
    def label(self) -> str:
        """The aid in organisers' words ("SE-CBIR similar images")."""
        return _AID_WORDS[self][0]

    @property
    def short(self) -> str:
        """The aid in a word, for table headings ("SE-CBIR")."""
        return _AID_WORDS[self][1]

    @property
    def shows_neighbours(self) -> bool:
        """Whether the aid is a list of similar images (from the 4- or the 3-channel model)."""
        return self in (Aid.SE_CBIR, Aid.CBIR)


# Each member's words beside it: (label, short).
_AID_WORDS: dict[Aid, tuple[str, str]] = {
    Aid.UNAIDED: ("No aid", "Unaided"),
    Aid.SE_CBIR: ("SE-CBIR similar images", "SE-CBIR"),
    Aid.CBIR: ("CBIR similar images", "CBIR"),
    Aid.PROBABILITIES: ("AI class probabilities", "Probabilities"),
    Aid.SALIENCY: ("Saliency map", "Saliency"),
}


class Classifier(enum.StrEnum):
    """Whose class probabilities a `probabilities` aid shows."""

    RGB_SALIENCY = "rgb_saliency"  # the 4-channel model (image + saliency), the thesis's
    RGB = "rgb"  # the 3-channel model (the image alone)

    @property
    def label(self) -> str:
        """The model in organisers' words ("image-only classifier")."""
        return _CLASSIFIER_WORDS[self][0]

    @property
    def short(self) -> str:
        """The model in a few words, for table headings ("image only")."""
        return _CLASSIFIER_WORDS[self][1]

    @property
    def reader(self) -> str:
        """The model in readers' words, who need not know how it was built."""
        return _CLASSIFIER_WORDS[self][2]


# (label, short, reader)
_CLASSIFIER_WORDS: dict[Classifier, tuple[str, str, str]] = {
    Classifier.RGB_SALIENCY: (
        "image + saliency classifier",
        "image + saliency",
        "from the image and where the AI looked",
    ),
    Classifier.RGB: ("image-only classifier", "image only", "from the image alone"),
}


class Design(enum.StrEnum):
    """How a study lays its conditions out over readers, sessions and cases
    (app/survey/designs.py plans each)."""

    SEQUENTIAL = "sequential"
    CROSSOVER = "crossover"
    PER_CASE = "per_case"
    INITIAL_REVISED = "initial_revised"

    @property
    def label(self) -> str:
        """The design's name ("Counterbalanced crossover")."""
        return _DESIGN_WORDS[self][0]

    @property
    def choice(self) -> str:
        """The design as the Design form offers it: its name and what it does."""
        return f"{self.label}: {_DESIGN_WORDS[self][1]}"


# (label, what it does)
_DESIGN_WORDS: dict[Design, tuple[str, str]] = {
    Design.SEQUENTIAL: ("Sequential replay", "every reader, the same order"),
    Design.CROSSOVER: ("Counterbalanced crossover", "orders balanced over readers"),
    Design.PER_CASE: ("Per-case randomised", "one task, conditions mixed"),
    Design.INITIAL_REVISED: ("Initial then revised", "unaided first, then the aid"),
}


class Preset(enum.StrEnum):
    """A design with its conditions, set in one click on the Design page."""

    THESIS = "thesis"
    THREE_ARM = "three_arm"

    @property
    def label(self) -> str:
        """The preset in organisers' words ("the three-arm crossover")."""
        return _PRESET_WORDS[self]


_PRESET_WORDS: dict[Preset, str] = {
    Preset.THESIS: "the thesis's design",
    Preset.THREE_ARM: "the three-arm crossover",
}


# The bundle's lists of names (plain strings: they are compared with JSON and written out).
NEIGHBOUR_AIDS: tuple[str, ...] = tuple(aid.value for aid in Aid if aid.shows_neighbours)
BUNDLE_AIDS: tuple[str, ...] = (*NEIGHBOUR_AIDS, Aid.PROBABILITIES.value, Aid.SALIENCY.value)
CONDITION_AIDS: tuple[str, ...] = (Aid.UNAIDED.value, *NEIGHBOUR_AIDS, Aid.PROBABILITIES.value)
CLASSIFIERS: tuple[str, ...] = tuple(model.value for model in Classifier)

# The thesis's two tasks as conditions: Task 1 read the lesion alone, Task 2 with SE-CBIR.
THESIS_CONDITIONS: tuple[str, str] = (Aid.UNAIDED.value, Aid.SE_CBIR.value)

# What a training run measured (the bundle's provenance.metrics), by the run's own keys: its
# aids and models, the control run and the 4-channel model's older key `rgbs`.
TRAINING_NAMES: dict[str, str] = {
    Aid.SE_CBIR.value: "SE-CBIR (image + saliency features)",
    Aid.CBIR.value: "CBIR (image features)",
    "control": "Control (saliency maps left blank)",
    Classifier.RGB.value: "Image-only classifier",
    "rgbs": "Image + saliency classifier",
    Classifier.RGB_SALIENCY.value: "Image + saliency classifier",
}


def training_name(key: str) -> str:
    """A training run's name for an aid or a model, in organisers' words (else the key)."""
    return TRAINING_NAMES.get(key, key)
