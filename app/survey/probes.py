"""Faulty-aid probes: a deliberately misleading aid, made from the study's own data. Pure.

A probe measures over-reliance: the reader sees an aid that points to a wrong class with the
same look as a real one. It is made the same way for every probe, so that it is plausible:

- the wrong class is the one the real aid itself ranks highest among the classes that are not
  the truth (the likeliest confusion), or for an aid that suggests none, the first other
  class of the taxonomy; for neighbours, the first such class of which the study has k images
  (a probe with fewer images than a real reading would give itself away);
- neighbours: k images all of that class, first those of the case's own retrieval list (they
  are the most similar to the query), then from the study's bank of neighbour images of that
  class, most similar to their own query first; never the case's own image;
- probabilities: the real vector with the wrong class's probability and the top probability
  swapped, so the wrong class leads with the real model's confidence.
"""

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


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


def misleading_neighbours(
    wrong: str, own: Sequence[N], bank: Iterable[N], k: int, exclude: Iterable[str] = ()
) -> list[N]:
    """`k` images of class `wrong`: the case's own first, then the bank's (as given).

    Images listed in `exclude` (the query's own image id) and repeats are skipped. Fewer than
    `k` come back only when the study has fewer images of that class.
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
