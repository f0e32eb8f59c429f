"""Faulty-aid probes: the wrong class, the misleading neighbours and probabilities."""

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from app.survey.designs import probe_positions
from app.survey.probes import (
    choose_sources,
    misleading_neighbours,
    misleading_probabilities,
    moved_majority,
    own_in_pattern,
    ranked_by_probability,
    swapped_pattern,
    wrong_class,
    wrong_classes,
)
from studybundle.vote import majority_vote

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


def test_moved_majority_keeps_the_lists_mixture_and_ranks_and_votes_the_wrong_class() -> None:
    own = [Img("a", "nv"), Img("b", "nv"), Img("c", "mel"), Img("d", "nv"), Img("e", "bkl")]
    bank = [Img("q", "mel"), Img("c", "mel"), Img("f", "mel"), Img("g", "nv"), Img("h", "mel")]
    bank += [Img("i", "mel")]
    moved = moved_majority(own, "mel", bank, exclude=["q"])
    assert moved is not None
    # nv's three places go to the bank's mel images (not the query "q", not "c" again), and
    # mel's one place to an nv image; bkl stays where it was.
    assert [i.image_id for i in moved] == ["f", "h", "g", "i", "e"]
    assert [i.truth for i in moved] == ["mel", "mel", "nv", "mel", "bkl"]
    assert majority_vote([i.truth for i in moved]) == "mel"
    assert moved_majority(own, "nv", bank) == own  # the list votes nv already
    assert moved_majority(own, "df", bank) is None  # no df image to move the majority to


def test_sources_are_other_cases_suggesting_the_wrong_class_strangers_first_never_twice() -> None:
    suggested = {1: {10: "mel", 11: "mel", 12: "nv", 13: "mel", 14: "bkl"}}
    readings = [(1, 10), (1, 12), (1, 14), (1, 11)]
    probes = {0: "mel", 1: "mel", 2: "df", 3: "nv"}
    own = {10, 11, 12, 14}
    sources = choose_sources(probes, readings, suggested, own, random.Random(0))
    # 13 is the only mel case the reader does not read: the first probe gets it, the second
    # one of the reader's own (never its own case 12's or 13 again); df has no source.
    assert sources[0] == 13 and sources[1] in (10, 11) and sources[2] is None
    assert sources[3] == 12
    for seed in range(20):
        again = choose_sources(probes, readings, suggested, own, random.Random(seed))
        chosen = [case for case in again.values() if case is not None]
        assert len(chosen) == len(set(chosen))
        assert all(suggested[1][again[i]] == probes[i] for i in again if again[i] is not None)


def test_probes_suggest_each_class_as_often_as_genuine_aids_do_in_a_skewed_mix() -> None:
    # Two thirds nevi, as in HAM10000: before, a probe pointed away from its case's truth, so
    # probes on nevi (most of them) all pointed to another class, and an aid suggesting a rare
    # class was likely a probe. Now the probes' classes follow the aids' own mix.
    truths = ["nv"] * 20 + ["mel"] * 6 + ["bkl"] * 4
    mix = {1: {"nv": 20, "mel": 6, "bkl": 4}}
    shown: Counter[str] = Counter()
    for seed in range(600):
        placed = probe_positions([1] * 30, 0.2, seed, truths=truths, mix=mix)
        assert len(placed) == 6
        for index, wrong in placed.items():
            assert wrong is not None and wrong != truths[index]
            shown[wrong] += 1
    total = sum(shown.values())
    for code, count in mix[1].items():
        assert abs(shown[code] / total - count / 30) < 0.03, (code, shown)


def test_own_in_pattern_fills_a_donors_class_pattern_with_the_querys_own_images() -> None:
    # The donor votes nv with two mel at ranks 2 and 4; the query's own nearest images of
    # each class take those places, most similar first within each class.
    donor = ["nv", "mel", "nv", "mel", "nv", "bkl"]
    own = {
        "nv": [Img("n1", "nv", 0.7), Img("n2", "nv", 0.6), Img("n3", "nv", 0.5), Img("n4", "nv")],
        "mel": [Img("m1", "mel", 0.9), Img("m2", "mel", 0.8)],
        "bkl": [Img("b1", "bkl", 0.4)],
    }
    shown = own_in_pattern(donor, own)
    assert shown is not None
    assert [i.image_id for i in shown] == ["n1", "m1", "n2", "m2", "n3", "b1"]
    assert [i.truth for i in shown] == donor and majority_vote([i.truth for i in shown]) == "nv"
    # Too few images of a class: None (the probe falls back), never a repeat.
    assert own_in_pattern([*donor, "bkl"], own) is None
    assert own_in_pattern(["df"], own) is None


def test_the_swapped_pattern_votes_the_wrong_class_with_the_same_mixture() -> None:
    own = ["mel", "mel", "nv", "mel", "bkl", "nv"]
    swapped = swapped_pattern(own, "nv")
    assert swapped == ["nv", "nv", "mel", "nv", "bkl", "mel"]
    assert majority_vote(swapped) == "nv"
    assert swapped_pattern(own, "df") == ["df", "df", "nv", "df", "bkl", "nv"]
    assert swapped_pattern(own, "mel") == own
