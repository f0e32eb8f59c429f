"""Study designs: balance of condition orders and of case-condition assignments, 2-60 readers."""

from collections import Counter
from itertools import pairwise

import pytest

from app.survey import sampling
from app.survey.designs import (
    Design,
    block_arm,
    per_case_conditions,
    plan,
    probe_positions,
    williams_sequences,
)

READERS = range(2, 61)


@pytest.mark.parametrize("conditions", range(1, 8))
def test_williams_square_is_latin_and_balanced_for_carry_over(conditions: int) -> None:
    rows = williams_sequences(conditions)
    assert len(rows) == (conditions if conditions % 2 == 0 or conditions == 1 else 2 * conditions)
    for row in rows:
        assert sorted(row) == list(range(conditions))
    for position in range(conditions):
        counts = Counter(row[position] for row in rows)
        assert len(set(counts.values())) == 1 and len(counts) == conditions
    pairs = Counter(pair for row in rows for pair in pairwise(row))
    if conditions > 1:
        # Every ordered pair of different conditions follows one another equally often.
        assert len(pairs) == conditions * (conditions - 1)
        assert len(set(pairs.values())) == 1


def test_two_conditions_give_ab_and_ba() -> None:
    assert williams_sequences(2) == [(0, 1), (1, 0)]
    assert sorted(williams_sequences(3)) == sorted(
        [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    )


@pytest.mark.parametrize("arms", [2, 3, 4, 6])
@pytest.mark.parametrize("study_seed", [0, 7, 123456])
def test_block_randomisation_keeps_arms_within_one_after_any_number_of_readers(
    arms: int, study_seed: int
) -> None:
    for readers in READERS:
        counts = Counter(block_arm(i, arms, study_seed) for i in range(readers))
        full = [counts.get(arm, 0) for arm in range(arms)]
        assert max(full) - min(full) <= 1, (readers, full)


def test_block_order_depends_on_the_study_seed() -> None:
    orders = {tuple(block_arm(i, 6, seed) for i in range(6)) for seed in range(20)}
    assert len(orders) > 5


def crossover_sequences(readers: int, conditions: int, study_seed: int) -> list[tuple[int, ...]]:
    cases = list(range(10))
    out = []
    for index in range(readers):
        sessions = plan(
            Design.CROSSOVER,
            cases,
            conditions,
            arm_index=index,
            study_seed=study_seed,
            reader_seed=1000 + index,
        )
        out.append(tuple(session[0].condition for session in sessions))
    return out


@pytest.mark.parametrize("conditions", [2, 3])
def test_crossover_orders_are_balanced_for_2_to_60_readers(conditions: int) -> None:
    rows = williams_sequences(conditions)
    for readers in READERS:
        sequences = crossover_sequences(readers, conditions, study_seed=42)
        counts = Counter(sequences)
        assert set(counts) <= set(rows)
        full = [counts.get(row, 0) for row in rows]
        assert max(full) - min(full) <= 1, (readers, full)
        # So each condition is read first by nearly as many readers as any other.
        first = Counter(sequence[0] for sequence in sequences)
        firsts = [first.get(c, 0) for c in range(conditions)]
        assert max(firsts) - min(firsts) <= len(rows) // conditions


def test_crossover_sessions_hold_every_case_once_under_one_condition() -> None:
    cases = list(range(12))
    sessions = plan(Design.CROSSOVER, cases, 3, arm_index=4, study_seed=1, reader_seed=99)
    assert len(sessions) == 3
    assert sorted(s[0].condition for s in sessions) == [0, 1, 2]
    for index, session in enumerate(sessions):
        assert sorted(r.case for r in session) == cases
        assert {r.condition for r in session} == {session[0].condition}
        assert {r.rotation for r in session} == {0 if index == 0 else 180}


def test_sequential_two_sessions_replay_the_thesis_draw_exactly() -> None:
    pool = {position: "nv" if position % 3 else "mel" for position in range(40)}
    for seed in (3, 17, 2**31 - 1):
        for reshuffle in (True, False):
            chosen = sampling.draw_set(pool, 20, seed)
            expected = sampling.draw(pool, 20, seed, reshuffle_later_sessions=reshuffle)
            sessions = plan(
                Design.SEQUENTIAL,
                chosen,
                2,
                arm_index=0,
                study_seed=5,
                reader_seed=seed,
                reshuffle=reshuffle,
            )
            assert tuple(r.case for r in sessions[0]) == expected.task1
            assert tuple(r.case for r in sessions[1]) == expected.task2
            assert [r.condition for r in sessions[0]] == [0] * 20
            assert [r.condition for r in sessions[1]] == [1] * 20
            assert {r.rotation for r in sessions[1]} == {180}


def test_rotation_is_a_setting() -> None:
    sessions = plan(
        Design.SEQUENTIAL,
        [1, 2, 3],
        2,
        arm_index=0,
        study_seed=0,
        reader_seed=0,
        rotate_later_sessions=False,
    )
    assert {r.rotation for s in sessions for r in s} == {0}


@pytest.mark.parametrize("conditions", [2, 3, 4])
@pytest.mark.parametrize("cases", [1, 5, 12, 31])
def test_per_case_conditions_are_balanced_within_each_reader(conditions: int, cases: int) -> None:
    for offset in range(conditions):
        counts = Counter(per_case_conditions(list(range(cases)), conditions, offset).values())
        full = [counts.get(c, 0) for c in range(conditions)]
        assert max(full) - min(full) <= 1


@pytest.mark.parametrize("design", [Design.PER_CASE, Design.INITIAL_REVISED])
@pytest.mark.parametrize("conditions", [2, 3])
def test_per_case_design_reads_every_case_under_every_condition_across_readers(
    design: Design, conditions: int
) -> None:
    cases = [f"case-{i}" for i in range(15)]
    for readers in READERS:
        grid: Counter[tuple[str, int]] = Counter()
        for index in range(readers):
            (session,) = plan(
                design, cases, conditions, arm_index=index, study_seed=9, reader_seed=index
            )
            assert sorted(r.case for r in session) == sorted(cases)
            within = Counter(r.condition for r in session)
            assert max(within.values()) - min(within.values()) <= 1
            grid.update((r.case, r.condition) for r in session)
        for case in cases:
            reads = [grid.get((case, c), 0) for c in range(conditions)]
            # Counts per condition differ by at most one; with as many readers as conditions,
            # every case has been read under every condition.
            assert max(reads) - min(reads) <= 1, (readers, case, reads)
            if readers >= conditions:
                assert min(reads) >= 1


def test_plans_are_reproducible_and_reader_orders_differ() -> None:
    cases = list(range(30))
    one = plan(Design.PER_CASE, cases, 3, arm_index=2, study_seed=4, reader_seed=11)
    assert one == plan(Design.PER_CASE, cases, 3, arm_index=2, study_seed=4, reader_seed=11)
    other = plan(Design.PER_CASE, cases, 3, arm_index=2, study_seed=4, reader_seed=12)
    assert [r.case for r in one[0]] != [r.case for r in other[0]]


@pytest.mark.parametrize(("aided", "share", "count"), [(0, 0.1, 0), (20, 0.0, 0), (20, 0.1, 2)])
def test_probe_positions_take_the_share(aided: int, share: float, count: int) -> None:
    conditions = [1 + index % 2 for index in range(aided)]
    chosen = probe_positions(conditions, share, seed=3)
    assert len(chosen) == count
    assert set(chosen) <= set(range(aided))
    assert chosen == probe_positions(conditions, share, seed=3)


@pytest.mark.parametrize("seed", range(40))
def test_probes_are_spread_over_every_misleadable_aid(seed: int) -> None:
    # Four aids with four readings each at a third: 5 probes, at least one per aid, the fifth
    # going to an aid drawn per reader; within an aid, any reading may be the probe.
    conditions = [1, 2, 3, 4] * 4
    chosen = probe_positions(conditions, 0.34, seed=seed)
    per_aid = Counter(conditions[index] for index in chosen)
    assert sorted(per_aid.values()) == [1, 1, 1, 2]


def test_probes_follow_each_aids_share_of_readings() -> None:
    # 12 readings of aid 1, 4 of aid 2 at a quarter: 3 and 1; over readers, every reading of
    # an aid is a probe equally often (no position gives it away).
    conditions = [1] * 12 + [2] * 4
    hits: Counter[int] = Counter()
    for seed in range(400):
        chosen = probe_positions(conditions, 0.25, seed=seed)
        assert Counter(conditions[index] for index in chosen) == {1: 3, 2: 1}
        hits.update(set(chosen))
    assert min(hits[index] for index in range(12)) > 60  # 100 expected each
    assert min(hits[index] for index in range(12, 16)) > 60


def test_probe_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        probe_positions([1] * 10, 1.5, seed=0)
