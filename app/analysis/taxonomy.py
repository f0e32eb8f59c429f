"""A study's taxonomy as the analysis sees it: class codes, which are malignant, melanoma.

The default is HAM10000's seven classes (`studybundle.taxonomy`); a study with its own
format-2 taxonomy (2-20 classes, each with a `malignant` flag) passes it in, built from its
manifest's classes (`Taxonomy.from_classes`). Class codes are matched case-insensitively.

Which class is melanoma: the one whose code is `mel` or whose name is "Melanoma" (either
case). A taxonomy with no such class (or with two) has no melanoma endpoints. Malignant vs
benign endpoints need at least one malignant and one benign class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from studybundle.taxonomy import HAM10000, HAM10000_CODES, HAM10000_MALIGNANT

MELANOMA_CODE = "mel"
MELANOMA_NAME = "melanoma"


@dataclass(frozen=True)
class Taxonomy:
    """The class codes in display order, the malignant ones, and the classes' full names."""

    classes: tuple[str, ...] = HAM10000_CODES
    malignant: frozenset[str] = HAM10000_MALIGNANT
    names: tuple[str, ...] = tuple(info.name for info in HAM10000)
    _lookup: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check the codes (distinct whatever the case) and index them case-insensitively."""
        lookup = {code.lower(): i for i, code in enumerate(self.classes)}
        if len(lookup) != len(self.classes) or not self.classes:
            raise ValueError(f"class codes must be distinct and present: {self.classes}")
        if len(self.names) != len(self.classes):
            raise ValueError("every class needs a name")
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def from_classes(cls, entries: Iterable[Mapping[str, Any]]) -> Taxonomy:
        """From manifest-like class entries: `code`, optional `name` and `malignant`."""
        listed = list(entries)
        return cls(
            classes=tuple(str(e["code"]) for e in listed),
            malignant=frozenset(str(e["code"]) for e in listed if e.get("malignant")),
            names=tuple(str(e.get("name") or e["code"]) for e in listed),
        )

    def index(self, code: str) -> int | None:
        """Position of a class code (any case, spaces around ignored), None when unknown."""
        return self._lookup.get(code.strip().lower())

    @property
    def melanoma(self) -> int | None:
        """The position of the melanoma class (see the module docstring), or None."""
        found = [
            i
            for i, (code, name) in enumerate(zip(self.classes, self.names, strict=True))
            if code.lower() == MELANOMA_CODE or name.strip().lower() == MELANOMA_NAME
        ]
        return found[0] if len(found) == 1 else None

    @property
    def malignant_indexes(self) -> list[int]:
        """Positions of the malignant classes."""
        return [i for i, code in enumerate(self.classes) if code in self.malignant]

    @property
    def splits_malignancy(self) -> bool:
        """Whether malignant vs benign is an endpoint: some classes malignant, some benign."""
        return 0 < len(self.malignant_indexes) < len(self.classes)


HAM10000_TAXONOMY = Taxonomy()
