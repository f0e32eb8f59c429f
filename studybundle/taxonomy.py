"""The default taxonomy (HAM10000's seven classes) and the default Likert labels.

These are the only place where HAM10000's class codes and the thesis's confidence labels are
written down: the pipeline writes them into bundles, format-1 bundles must carry exactly them,
the analysis uses the codes as its default class order, and tests build bundles from them.
"""

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ClassInfo:
    """One diagnostic class as a bundle describes it to readers."""

    code: str
    name: str
    colour: str  # frame and button colour, #RRGGBB
    text_colour: str  # the one of black/white that reads best on `colour` (WCAG contrast)
    definition: str
    malignant: bool  # for malignant-vs-benign endpoints

    def as_json(self, with_malignant: bool = True) -> dict[str, Any]:
        """The manifest entry of this class (format 1 has no `malignant` key)."""
        entry = asdict(self)
        if not with_malignant:
            del entry["malignant"]
        return entry


# Okabe-Ito colours. Malignant classes get the warm colours the thesis used for them (orange,
# vermillion) or black; benign ones the cool ones. Yellow, the palette's least readable frame
# on a white page, is left out.
HAM10000: tuple[ClassInfo, ...] = (
    ClassInfo(
        "akiec",
        "Actinic keratosis / intraepithelial carcinoma (Bowen's disease)",
        "#E69F00",
        "#000000",
        "Actinic (solar) keratoses and intraepithelial carcinoma (Bowen's disease): common "
        "non-invasive variants of squamous cell carcinoma that can be treated locally without "
        "surgery.",
        True,
    ),
    ClassInfo(
        "bcc",
        "Basal cell carcinoma",
        "#D55E00",
        "#000000",
        "A common variant of epithelial skin cancer that rarely metastasises but grows "
        "destructively if untreated. It causes the second most skin-cancer deaths after "
        "melanoma.",
        True,
    ),
    ClassInfo(
        "bkl",
        "Benign keratosis",
        "#009E73",
        "#000000",
        "A generic class for seborrhoeic keratoses (senile warts), solar lentigines and "
        "lichen planus-like keratoses. They may look different under the dermatoscope but are "
        "biologically similar and often reported under the same term by histopathology.",
        False,
    ),
    ClassInfo(
        "df",
        "Dermatofibroma",
        "#56B4E9",
        "#000000",
        "A benign skin lesion, regarded either as a benign proliferation or as an inflammatory "
        "reaction to minimal trauma.",
        False,
    ),
    ClassInfo(
        "mel",
        "Melanoma",
        "#000000",
        "#FFFFFF",
        "A malignant neoplasm of melanocytes that appears in different variants; invasive and "
        "in-situ melanomas are included (not non-pigmented, subungual, ocular or mucosal ones). "
        "Melanomas cause about three quarters of all skin-cancer deaths.",
        True,
    ),
    ClassInfo(
        "nv",
        "Melanocytic nevus",
        "#0072B2",
        "#FFFFFF",
        "Benign neoplasms of melanocytes in a myriad of variants, which can differ markedly "
        "under the dermatoscope. Nevi that resemble melanoma are over-represented.",
        False,
    ),
    ClassInfo(
        "vasc",
        "Vascular lesion",
        "#CC79A7",
        "#000000",
        "Vascular skin lesions, from cherry angiomas to angiokeratomas and pyogenic granulomas, "
        "and also haemorrhages.",
        False,
    ),
)

HAM10000_CODES: tuple[str, ...] = tuple(info.code for info in HAM10000)
HAM10000_MALIGNANT: frozenset[str] = frozenset(info.code for info in HAM10000 if info.malignant)

# Thesis section 3.4: the confidence scale, level 1 first.
LIKERT: tuple[str, ...] = (
    "not confident at all",
    "slightly confident",
    "somewhat confident",
    "fairly confident",
    "completely confident",
)


def relative_luminance(colour: str) -> float:
    """WCAG relative luminance of a #RRGGBB colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio between two #RRGGBB colours (1 to 21)."""
    a, b = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def readable_text_colour(colour: str) -> str:
    """Black or white, whichever contrasts more with `colour`."""
    black, white = contrast_ratio(colour, "#000000"), contrast_ratio(colour, "#FFFFFF")
    return "#000000" if black >= white else "#FFFFFF"
