"""Faulty-aid probes: the wrong class, the misleading neighbours and probabilities."""

from dataclasses import dataclass

import pytest

from app.survey.probes import (
    misleading_neighbours,
    misleading_probabilities,
    ranked_by_probability,
    wrong_class,
    wrong_classes,
)

CODES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


@dataclass(frozen=True)
class Img:
    image_id: str
    truth: str
    similarity: float = 0.5


def test_the_wrong_class_is_the_aids_best_ranked_class_that_is_not_the_truth() -> None:
    assert wrong_class("mel", ["mel", "mel", "nv", "bkl"], CODES) == "nv"
    assert wrong_class("nv", ["bkl", "nv"], CODES) == "bkl"
    # An aid that suggests only the truth: the first other class of the taxonomy.
    assert wrong_class("akiec", ["akiec"], CODES) == "bcc"
    with pytest.raises(ValueError, match="two classes"):
        wrong_class("nv", [], ("nv",))


def test_misleading_neighbours_are_all_of_the_wrong_class_own_list_first() -> None:
    own = [Img("a", "mel"), Img("b", "nv"), Img("c", "mel"), Img("d", "bkl")]
    bank = [Img("b", "nv"), Img("e", "nv"), Img("q", "nv"), Img("f", "nv"), Img("g", "nv")]
    shown = misleading_neighbours("nv", own, bank, k=3, exclude=["q"])
    assert [i.image_id for i in shown] == ["b", "e", "f"]  # "b" once, the query "q" never
    assert {i.truth for i in shown} == {"nv"}
    assert len(misleading_neighbours("df", own, bank, k=6)) == 0


def test_misleading_probabilities_make_the_wrong_class_lead() -> None:
    real = [0.05, 0.05, 0.1, 0.0, 0.6, 0.15, 0.05]
    ranked = ranked_by_probability(real, CODES)
    assert ranked[:2] == ["mel", "nv"]
    wrong = wrong_class("mel", ranked, CODES)
    faulty = misleading_probabilities(real, CODES, wrong)
    assert ranked_by_probability(faulty, CODES)[0] == "nv"
    assert faulty[CODES.index("nv")] == 0.6 and faulty[CODES.index("mel")] == 0.15
    assert sum(faulty) == pytest.approx(1.0)
    # When the model already leads with the wrong class, the vector stays as it is.
    assert misleading_probabilities(real, CODES, "mel") == real


def test_wrong_classes_list_every_other_class_the_aids_ranking_first() -> None:
    assert wrong_classes("mel", ["nv", "mel", "bkl"], CODES) == [
        "nv",
        "bkl",
        "akiec",
        "bcc",
        "df",
        "vasc",
    ]
