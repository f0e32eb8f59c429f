"""Study designs: which condition each reader reads each case under, in which session. Pure.

A design turns a reader's drawn cases (from `sampling.draw_set`), the study's number of
conditions and two seeds into sessions of readings. Everything is seeded and written out with
`sampling`'s stable primitives, so the same inputs give the same plan on any machine.

- Sequential replay (the thesis): every reader reads all their cases in session 1 under the
  first condition, then again in session 2 under the second, and so on: one fixed order.
- Counterbalanced crossover: the same, but readers are randomised in balanced blocks to the
  condition orders of a Williams design (AB/BA for two conditions; for more, a Latin square
  balanced for first-order carry-over), so each order is used equally often (+-1).
- Per-case randomised: one session; each case is read under one condition, conditions balanced
  within each reader (+-1) and rotated across readers, so that in a fully crossed study (every
  reader reads the whole pool) every block of as many readers as conditions reads every case
  under every condition.
- Initial then revised: one session; each case is answered unaided, then the aid is shown and
  the reader confirms or revises. Its plan is the per-case plan of its aided conditions (one
  aid: every case under it).

A reader's place in the randomisation is their `arm_index`: the order in which they enrolled
(0, 1, 2, ...). Blocks of the randomisation are permuted by the study's seed, so neither the
organiser nor a reader can predict the next reader's arm.
"""

import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.survey.sampling import shuffled, stream, weighted
from studybundle.vocabulary import Design as Design  # the designs' names and their words

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Reading(Generic[K]):
    """One case to read: its key, the index of its condition, whether it is shown turned."""

    case: K
    condition: int
    rotation: int = 0


def williams_sequences(conditions: int) -> list[tuple[int, ...]]:
    """The condition orders of a Williams design for `conditions` conditions.

    Each condition appears once in every position of the rows taken together, and each
    ordered pair of conditions follows one another equally often. With an even number of
    conditions one Latin square does it (2 -> AB, BA); with an odd number the square and its
    mirror image (3 -> all six orders).
    """
    if conditions < 1:
        raise ValueError("a design needs at least one condition")
    first = [0]
    low, high = 1, conditions - 1
    while len(first) < conditions:
        first.append(low)
        low += 1
        if len(first) < conditions:
            first.append(high)
            high -= 1
    rows = [tuple((c + shift) % conditions for c in first) for shift in range(conditions)]
    if conditions % 2 == 1 and conditions > 1:
        rows += [tuple(reversed(row)) for row in rows]
    return rows


def block_arm(arm_index: int, arms: int, study_seed: int) -> int:
    """The arm (0..arms-1) of the reader who enrolled `arm_index`-th: permuted blocks.

    Readers 0..arms-1 form the first block, arms..2*arms-1 the second, and so on; each block
    holds every arm once in an order drawn from the study's seed. After any number of readers
    no arm has more than one reader more than another.
    """
    if arms < 1 or arm_index < 0:
        raise ValueError("arms must be positive and arm_index not negative")
    block, place = divmod(arm_index, arms)
    order = shuffled(range(arms), stream(study_seed, f"block:{block}"))
    return order[place]


def session_orders(cases: Sequence[K], sessions: int, seed: int, reshuffle: bool) -> list[list[K]]:
    """The order of the cases in each session: independent shuffles, or session 1's again.

    Session s's order is a shuffle by the reader's stream "task<s>", which keeps the thesis
    replay's two orders exactly those of `sampling.draw`.
    """
    first = shuffled(cases, stream(seed, "task1"))
    orders = [first]
    for session in range(2, sessions + 1):
        orders.append(shuffled(cases, stream(seed, f"task{session}")) if reshuffle else first)
    return [list(order) for order in orders]


def per_case_conditions(cases: Sequence[K], conditions: int, offset: int) -> dict[K, int]:
    """Each case's condition in a per-case design: a Latin rotation over the canonical order.

    The case at canonical rank r gets condition (r + offset) mod `conditions`: within the
    reader the counts differ by at most one, and readers with different offsets read the same
    case under different conditions.
    """
    return {case: (rank + offset) % conditions for rank, case in enumerate(cases)}


def plan(
    design: Design,
    cases: Sequence[K],
    conditions: int,
    *,
    arm_index: int,
    study_seed: int,
    reader_seed: int,
    reshuffle: bool = True,
    rotate_later_sessions: bool = True,
) -> list[list[Reading[K]]]:
    """A reader's sessions: the readings of each, in the order they are shown.

    `cases` is the reader's drawn set in canonical order. Sessions after the first show the
    query turned by 180 degrees when `rotate_later_sessions` (the thesis's choice for its
    second look at the same lesions).
    """
    if conditions < 1:
        raise ValueError("a design needs at least one condition")
    if design in (Design.SEQUENTIAL, Design.CROSSOVER):
        if design == Design.SEQUENTIAL:
            sequence: tuple[int, ...] = tuple(range(conditions))
        else:
            rows = williams_sequences(conditions)
            sequence = rows[block_arm(arm_index, len(rows), study_seed)]
        orders = session_orders(cases, len(sequence), reader_seed, reshuffle)
        return [
            [
                Reading(case, condition, 180 if index and rotate_later_sessions else 0)
                for case in order
            ]
            for index, (condition, order) in enumerate(zip(sequence, orders, strict=True))
        ]
    offset = block_arm(arm_index, conditions, study_seed)
    assigned = per_case_conditions(cases, conditions, offset)
    (order,) = session_orders(cases, 1, reader_seed, reshuffle)
    return [[Reading(case, assigned[case]) for case in order]]


def probe_positions(
    conditions: Sequence[int],
    share: float,
    seed: int,
    truths: Sequence[str] | None = None,
    mix: Mapping[int, Mapping[str, int]] | None = None,
) -> dict[int, str | None]:
    """Which of a reader's aided readings (by index) show a deliberately faulty aid, and the
    class each points to.

    `conditions` holds the condition of each reading that can carry a probe. round(share * n)
    of the n readings are probes, spread over the conditions in proportion to their readings
    (largest remainders, ties drawn at random), so that every aid's over-reliance is measured.
    Every reader gets the same share, and nobody can tell from the position which ones they are.

    Within a condition, with `truths` (each reading's case truth) and `mix` (per condition, how
    many of the study's genuine aids suggest each class), each probe first draws the class it
    points to in proportion to `mix`, then a reading of a case of another class: probes
    suggest each class as often as the genuine aids do, so that in a skewed case mix (mostly
    nevi) a rarer class's suggestion is no sign of a probe. A probe finds no class only when
    every reading left is of the one class the aids suggest (None: the aid's best-ranked wrong
    class is used). Without `truths`, readings are chosen uniformly and no class is drawn.
    All draws come from the reader's "probes" stream.
    """
    if not 0 <= share <= 1:
        raise ValueError("the probe share must be between 0 and 1")
    rng = stream(seed, "probes")
    by_condition: dict[int, list[int]] = {}
    for index, condition in enumerate(conditions):
        by_condition.setdefault(condition, []).append(index)
    groups = sorted(by_condition)
    quotas = {c: share * len(by_condition[c]) for c in groups}
    counts = {c: int(quotas[c]) for c in groups}
    left = round(share * len(conditions)) - sum(counts.values())
    tie_break = {c: rank for rank, c in enumerate(shuffled(groups, rng))}
    for c in sorted(groups, key=lambda c: (counts[c] - quotas[c], tie_break[c]))[:left]:
        counts[c] += 1
    chosen: dict[int, str | None] = {}
    for c in groups:
        order = shuffled(by_condition[c], rng)
        if truths is None or mix is None:
            chosen.update(dict.fromkeys(order[: counts[c]]))
            continue
        for _ in range(counts[c]):
            chosen.update(_one_probe(order, truths, mix.get(c, {}), rng))
    return chosen


def _one_probe(
    order: list[int], truths: Sequence[str], mix: Mapping[str, int], rng: random.Random
) -> dict[int, str | None]:
    """One probe among the readings left in `order` (taken out of it): a class drawn by `mix`
    among those some reading left is not of, then the first such reading."""
    possible = {code: n for code, n in mix.items() if any(truths[i] != code for i in order)}
    if not any(n > 0 for n in possible.values()):
        return {order.pop(0): None}
    wrong = weighted(possible, rng)
    index = next(i for i in order if truths[i] != wrong)
    order.remove(index)
    return {index: wrong}
