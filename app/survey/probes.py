"""Faulty-aid probes: a deliberately misleading aid, made from the study's own data. Pure.

A probe measures over-reliance: the reader sees an aid that points to a wrong class. It must
look like a real aid, or a reader who tells the two apart turns the measure into noise: probes
that showed k neighbours all of one class were single-class in 11 of 11 readings, genuine
SE-CBIR lists in 2 of 32 (issue 22). So a probe shows a genuine aid's shape, drawn per reader:

- placement (app.survey.designs.probe_positions): each probe first draws the class it points
  to, in proportion to how often the study's genuine aids of its condition suggest each class,
  then a reading of a case of another class; probes then suggest each class as often as real
  aids do, also in a skewed case mix;
- its pattern (`choose_sources`): the genuine aid of another case of the study that suggests
  that class (its neighbour list, or its classifier's probabilities), a case the reader does
  not read themselves where there is one, never twice for one reader; without one, the case's
  own list with its voted class and the wrong class trading places (`swapped_pattern`);
- its images (`own_in_pattern`): where the bundle carries each query's nearest images of
  every class (its `class_neighbours`), the pattern's ranks take this case's own nearest
  images of their classes. A borrowed list was retrieved for another picture, so it did not
  look like the case beside it (benchmarks/probes.py: a classifier on how like the query the
  tiles are told probes from genuine readings at AUC 0.98); filled with the case's own
  images, the list keeps a genuine list's class mixture and ranks (which a list of k images
  of the wrong class alone did not) and is as near the case as that class's images come. The
  donor's class order is kept rather than re-sorting by similarity: the case's own class
  would then take rank 1, which a list voting another class seldom shows;
- where the bundle has no such images, or too few of a class: the donor's list itself, or the
  case's own list with its majority moved (`moved_majority`: the images of its voted class
  and of the wrong class trade places, from the study's bank of neighbour images, most
  similar first); probabilities: the donor's, or the case's own with the wrong class's value
  and the top one swapped (`misleading_probabilities`).

A probe's list is a list of labelled neighbours like any other: bank images (never a query's
picture or lesion, which the bundle's validator and the import refuse), their classes, ranks.
Probes drawn before this (assignments without a drawn class) point to the aid's best-ranked
class that is not the truth (`wrong_class`), shown the same way as the last case.
"""

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from app.survey.sampling import below
from studybundle.vote import majority_vote


class Image(Protocol):
    """A neighbour image: its id, its class and its similarity to its own query."""

    image_id: str
    truth: str
    similarity: float


N = TypeVar("N", bound=Image)


def wrong_classes(truth: str, ranked: Iterable[str], codes: Sequence[str]) -> list[str]:
    """The classes a probe may point to, best first: the aid's ranking, then the taxonomy's."""
    out = list(dict.fromkeys(code for code in [*ranked, *codes] if code != truth and code in codes))
    if not out:
        raise ValueError("a taxonomy needs at least two classes")
    return out


def wrong_class(truth: str, ranked: Iterable[str], codes: Sequence[str]) -> str:
    """The class a probe points to: the aid's best-ranked class that is not `truth`."""
    return wrong_classes(truth, ranked, codes)[0]


def ranked_by_probability(probabilities: Sequence[float], codes: Sequence[str]) -> list[str]:
    """The class codes, most probable first (ties: taxonomy order)."""
    order = sorted(range(len(codes)), key=lambda i: (-probabilities[i], i))
    return [codes[i] for i in order]


def choose_sources(
    probes: Mapping[int, str | None],
    readings: Sequence[tuple[int, int]],
    suggested: Mapping[int, Mapping[int, str]],
    own: Collection[int],
    rng: random.Random,
) -> dict[int, int | None]:
    """For each probe (reading index -> its wrong class), the case whose genuine aid it shows.

    `readings[i]` is (condition, case id) of reading i; `suggested[condition]` maps every case
    of the study to the class its genuine aid suggests under that condition. A source is
    another case whose aid suggests the probe's class, one of the reader's own cases (`own`)
    only when no other case does, and none twice; None where there is none at all.
    """
    used: set[int] = set()
    out: dict[int, int | None] = {}
    for index in sorted(probes):
        wrong, (condition, case) = probes[index], readings[index]
        fitting = [
            other
            for other, code in sorted(suggested.get(condition, {}).items())
            if code == wrong and other != case and other not in used
        ]
        strangers = [other for other in fitting if other not in own]
        pool = strangers or fitting
        if not pool:
            out[index] = None
            continue
        chosen = pool[below(rng, len(pool))]
        used.add(chosen)
        out[index] = chosen
    return out


def own_in_pattern(pattern: Sequence[str], by_class: Mapping[str, Sequence[N]]) -> list[N] | None:
    """A donor list's class-by-rank `pattern` filled with this query's own nearest images.

    `by_class[c]` holds the query's nearest images of class c, most similar first (the
    bundle's `class_neighbours`). Each rank of the pattern takes the next image of its class,
    so the list has the donor's class mixture and ranks and images retrieved for this query:
    what was chosen for the picture is not given away by how unlike it the tiles look. None
    when the query has too few images of some class (no repeats).
    """
    taken: dict[str, int] = {}
    out: list[N] = []
    for code in pattern:
        images = by_class.get(code, ())
        index = taken.get(code, 0)
        if index >= len(images):
            return None
        taken[code] = index + 1
        out.append(images[index])
    return out


def swapped_pattern(truths: Sequence[str], wrong: str) -> list[str]:
    """A list's class-by-rank pattern with its voted class and `wrong` trading places: the
    pattern a probe fills when no other case's aid suggests `wrong` (it then votes `wrong`)."""
    voted = majority_vote(truths)
    swap = {voted: wrong, wrong: voted}
    return [swap.get(code, code) for code in truths]


def moved_majority(
    own: Sequence[N], wrong: str, bank: Iterable[N], exclude: Iterable[str] = ()
) -> list[N] | None:
    """`own` (a genuine list) with its voted class and `wrong` trading places.

    Every image of the list's voted class gives its place to the bank's next image of class
    `wrong`, and every image of class `wrong` to the next of the voted class (bank order, most
    similar first; no repeats, nothing in `exclude`): the list keeps its class mixture and
    ranks, and now votes `wrong`. `own` as it is when it votes `wrong` already; None when the
    bank runs short of either class.
    """
    truths = [image.truth for image in own]
    voted = majority_vote(truths)
    if voted == wrong:
        return list(own)
    skipped = set(exclude) | {image.image_id for image in own}
    spare: dict[str, list[N]] = {voted: [], wrong: []}
    for image in bank:
        if image.truth in spare and image.image_id not in skipped:
            skipped.add(image.image_id)
            spare[image.truth].append(image)
    swap = {voted: wrong, wrong: voted}
    needed = {code: truths.count(other) for other, code in swap.items()}
    if any(len(spare[code]) < count for code, count in needed.items()):
        return None
    return [spare[swap[image.truth]].pop(0) if image.truth in swap else image for image in own]


def misleading_neighbours(
    wrong: str, own: Sequence[N], bank: Iterable[N], k: int, exclude: Iterable[str] = ()
) -> list[N]:
    """`k` images of class `wrong`: the case's own first, then the bank's (as given).

    The last resort of a probe whose class the study holds too few images of to move a
    list's majority. Images listed in `exclude` (the query's own image id) and repeats are
    skipped. Fewer than `k` come back only when the study has fewer images of that class.
    """
    skipped = set(exclude)
    out: list[N] = []
    for image in [*own, *bank]:
        if image.truth != wrong or image.image_id in skipped:
            continue
        skipped.add(image.image_id)
        out.append(image)
        if len(out) == k:
            break
    return out


def misleading_probabilities(
    probabilities: Sequence[float], codes: Sequence[str], wrong: str
) -> list[float]:
    """`probabilities` with the wrong class's value swapped with the largest one."""
    values = list(probabilities)
    top = max(range(len(values)), key=lambda i: (values[i], -i))
    index = list(codes).index(wrong)
    values[top], values[index] = values[index], values[top]
    return values
