"""Unit tests of the reader's draw (pure functions, no app)."""

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.survey import sampling

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def skewed_pool(size: int = 200) -> dict[int, str]:
    """A pool shaped like HAM10000: mostly nevi, few dermatofibromas."""
    weights = {"nv": 67, "mel": 11, "bkl": 11, "bcc": 5, "akiec": 3, "vasc": 2, "df": 1}
    classes = [c for c, w in weights.items() for _ in range(w)]
    return {position: classes[position * 7 % len(classes)] for position in range(size)}


def test_same_seed_same_draw() -> None:
    pool = skewed_pool()
    assert sampling.draw(pool, 20, 1234) == sampling.draw(pool, 20, 1234)
    assert sampling.draw(pool, 20, 1234, "stratified") == sampling.draw(
        pool, 20, 1234, "stratified"
    )


def test_draw_does_not_depend_on_pool_order() -> None:
    pool = skewed_pool()
    items = list(pool.items())
    random.Random(5).shuffle(items)
    assert sampling.draw(dict(items), 20, 99) == sampling.draw(pool, 20, 99)


def test_draw_is_pinned() -> None:
    """The algorithm is fixed: a code change that alters existing readers' draws fails here."""
    pool = {i: CLASSES[i % 7] for i in range(30)}
    result = sampling.draw(pool, 5, 42)
    assert result == sampling.Draw(task1=PINNED_TASK1, task2=PINNED_TASK2)


PINNED_TASK1 = (19, 22, 23, 13, 25)
PINNED_TASK2 = (13, 23, 25, 19, 22)


def test_different_seeds_give_different_draws() -> None:
    pool = skewed_pool()
    draws = {frozenset(sampling.draw(pool, 20, seed).task1) for seed in range(50)}
    # 50 simple random samples of 20 from 200 collide with negligible probability.
    assert len(draws) == 50


def test_same_lesions_in_both_tasks_in_independent_orders() -> None:
    pool = skewed_pool()
    result = sampling.draw(pool, 30, 7)
    assert len(result.task1) == 30 == len(set(result.task1))
    assert sorted(result.task1) == sorted(result.task2)
    assert result.task1 != result.task2


def test_task2_keeps_task1_order_without_reshuffle() -> None:
    pool = skewed_pool()
    result = sampling.draw(pool, 30, 7, reshuffle_later_sessions=False)
    assert result.task1 == result.task2
    # The draw and Task 1 order are the same with or without the reshuffle.
    assert result.task1 == sampling.draw(pool, 30, 7).task1


def test_task1_order_is_shuffled() -> None:
    pool = {i: "nv" for i in range(100)}
    orders = [sampling.draw(pool, 100, seed).task1 for seed in range(5)]
    assert all(order != tuple(range(100)) for order in orders)
    assert len(set(orders)) == 5


def test_random_sampling_is_uniform_over_cases() -> None:
    pool = {i: "nv" for i in range(10)}
    counts = Counter(k for seed in range(2000) for k in sampling.draw(pool, 3, seed).task1)
    # Each case is expected 600 times (2000 draws x 3/10); 5 standard deviations is ~100.
    assert all(500 < counts[k] < 700 for k in range(10)), counts


def test_stratified_proportions() -> None:
    pool = skewed_pool(1000)
    shares = Counter(pool.values())
    for seed in range(5):
        result = sampling.draw(pool, 100, seed, "stratified")
        drawn = Counter(pool[k] for k in result.task1)
        for code, count in shares.items():
            expected = 100 * count / 1000
            assert abs(drawn[code] - expected) < 1, (code, drawn[code], expected)
        assert sum(drawn.values()) == 100


def test_stratified_draws_differ_between_seeds_but_not_in_proportions() -> None:
    pool = skewed_pool(1000)
    a = sampling.draw(pool, 50, 1, "stratified")
    b = sampling.draw(pool, 50, 2, "stratified")
    assert set(a.task1) != set(b.task1)
    assert Counter(pool[k] for k in a.task1) == Counter(pool[k] for k in b.task1)


def test_allocate_largest_remainders() -> None:
    # shares of 10: 4.2, 3.4, 2.4 -> whole 4, 3, 2 and one left for the largest remainder .4;
    # .4 ties between b and c, the larger class (b) wins.
    assert sampling.allocate({"a": 42, "b": 34, "c": 24}, 10) == {"a": 4, "b": 4, "c": 2}
    assert sampling.allocate({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}
    assert sampling.allocate({"a": 5, "b": 5}, 0) == {"a": 0, "b": 0}
    assert sampling.allocate({"a": 5, "b": 3}, 8) == {"a": 5, "b": 3}


@settings(max_examples=200, deadline=None)
@given(
    counts=st.dictionaries(st.sampled_from(CLASSES), st.integers(1, 60), min_size=1),
    data=st.data(),
)
def test_allocate_properties(counts: dict[str, int], data: st.DataObject) -> None:
    total = sum(counts.values())
    n = data.draw(st.integers(0, total))
    quota = sampling.allocate(counts, n)
    assert sum(quota.values()) == n
    for code, count in counts.items():
        assert 0 <= quota[code] <= count
        # Largest remainders never move a class more than one case from its exact share.
        assert abs(quota[code] - n * count / total) < 1


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 80),
    data=st.data(),
    seed=st.integers(0, sampling.SEED_LIMIT - 1),
    method=st.sampled_from(sampling.METHODS),
)
def test_draw_properties(size: int, data: st.DataObject, seed: int, method: str) -> None:
    pool = {i * 3: CLASSES[(i * i) % 7] for i in range(size)}
    n = data.draw(st.integers(1, size))
    result = sampling.draw(pool, n, seed, method)
    assert len(set(result.task1)) == n
    assert set(result.task1) == set(result.task2) <= set(pool)


def test_bad_requests() -> None:
    pool = skewed_pool(10)
    with pytest.raises(ValueError):
        sampling.draw(pool, 11, 1)
    with pytest.raises(ValueError):
        sampling.draw(pool, 0, 1)
    with pytest.raises(ValueError):
        sampling.draw(pool, 3, 1, "systematic")


def test_new_seed_fits_the_column() -> None:
    seeds = {sampling.new_seed() for _ in range(100)}
    assert all(0 <= s < 2**31 for s in seeds)
    assert len(seeds) > 90
