"""Draw a reader's query set from a study's pool: seeded, reproducible, pure.

A draw depends only on the pool (case keys with their classes), the number of cases, the
sampling method and the reader's seed: the same inputs give the same draw on any machine and
database. The same cases are used in both tasks; each task gets its own shuffled order.

Reproducibility across Python versions: `random.Random(seed)` is only asked for
`getrandbits`, whose output for an integer seed is stable, and the sampling and shuffling are
written out here instead of relying on `random.sample`/`random.shuffle`, whose algorithms the
standard library does not promise to keep.
"""

import hashlib
import random
import secrets
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

RANDOM = "random"
STRATIFIED = "stratified"
METHODS = (RANDOM, STRATIFIED)

# Enrolment.seed is a 32-bit signed integer column on PostgreSQL.
SEED_LIMIT = 2**31


class SortableKey(Hashable, Protocol):
    """What a case key must be: hashable, and ordered so that a pool's walk is fixed."""

    def __lt__(self, other: Any, /) -> bool: ...


K = TypeVar("K", bound=SortableKey)  # a case key that sorts: Case.position
T = TypeVar("T")


@dataclass(frozen=True)
class Draw(Generic[K]):
    """A reader's cases: the keys in Task 1 order and in Task 2 order (the same set)."""

    task1: tuple[K, ...]
    task2: tuple[K, ...]


def new_seed() -> int:
    """A fresh, unpredictable seed that fits the database column."""
    return secrets.randbelow(SEED_LIMIT)


def stream(seed: int, purpose: str) -> random.Random:
    """An independent random stream for one purpose ("draw", "task1", ...) of one seed.

    Separate streams keep the Task 2 order independent of how many numbers the draw used.
    """
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n) by rejection sampling on `getrandbits` (stable algorithm)."""
    if n <= 0:
        raise ValueError("n must be positive")
    bits = n.bit_length()
    while True:
        value = rng.getrandbits(bits)
        if value < n:
            return value


def shuffled(items: Sequence[T], rng: random.Random) -> list[T]:
    """A Fisher-Yates shuffled copy of `items`."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = below(rng, i + 1)
        out[i], out[j] = out[j], out[i]
    return out


def weighted(weights: Mapping[K, int], rng: random.Random) -> K:
    """One key drawn with probability proportional to its (positive integer) weight.

    Keys are walked in sorted order, so the draw depends on the weights only, not on the
    order the mapping was built in.
    """
    keys = sorted(key for key, weight in weights.items() if weight > 0)
    if not keys:
        raise ValueError("nothing to draw: no positive weight")
    point = below(rng, sum(weights[key] for key in keys))
    for key in keys:
        point -= weights[key]
        if point < 0:
            return key
    raise AssertionError("unreachable: the point lies below the total")


def simple_sample(items: Sequence[T], n: int, rng: random.Random) -> list[T]:
    """`n` distinct items drawn uniformly without replacement (a partial Fisher-Yates)."""
    if not 0 <= n <= len(items):
        raise ValueError(f"cannot draw {n} of {len(items)} items")
    pool = list(items)
    for i in range(n):
        j = i + below(rng, len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:n]


def allocate(counts: Mapping[str, int], n: int) -> dict[str, int]:
    """Split `n` over the classes in proportion to `counts` (largest remainders).

    Each class first gets the whole part of its share; the cases left over go to the classes
    with the largest fractional parts, ties broken by the larger class, then by class code,
    so the allocation is deterministic. No class gets more than it has.
    """
    total = sum(counts.values())
    if not 0 <= n <= total:
        raise ValueError(f"cannot draw {n} of {total} cases")
    if n == 0:
        return dict.fromkeys(counts, 0)
    # Exact integer arithmetic: share = n * count / total = whole + remainder / total.
    whole = {c: n * k // total for c, k in counts.items()}
    remainder = {c: n * k % total for c, k in counts.items()}
    left = n - sum(whole.values())
    order = sorted(counts, key=lambda c: (-remainder[c], -counts[c], c))
    for c in order[:left]:
        whole[c] += 1
    return whole


def sort_pool(pool: Mapping[K, str]) -> list[K]:
    """The pool's keys in a canonical order, so a draw never depends on row order."""
    return sorted(pool)


def draw_set(pool: Mapping[K, str], n: int, seed: int, method: str = RANDOM) -> list[K]:
    """Which `n` cases of the pool (key -> class code) a reader gets, in canonical order."""
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; expected one of {METHODS}")
    keys = sort_pool(pool)
    if not 0 < n <= len(keys):
        raise ValueError(f"cannot draw {n} cases from a pool of {len(keys)}")
    rng = stream(seed, "draw")
    if method == RANDOM:
        chosen = simple_sample(keys, n, rng)
    else:
        by_class: dict[str, list[K]] = {}
        for key in keys:
            by_class.setdefault(pool[key], []).append(key)
        quota = allocate({c: len(ks) for c, ks in by_class.items()}, n)
        chosen = []
        # Classes in code order, so the stream is consumed the same way every time.
        for code in sorted(by_class):
            chosen.extend(simple_sample(by_class[code], quota[code], rng))
    chosen_set = set(chosen)
    return [key for key in keys if key in chosen_set]


def practice_set(pool: Sequence[K], chosen: Sequence[K], n: int, seed: int) -> list[K]:
    """Up to `n` practice cases for a reader: drawn from the pool's cases outside the reader's
    own draw (`chosen`), so that no case they practise on comes back among those analysed;
    fewer when the pool has fewer to spare. In the order they are read."""
    taken = set(chosen)
    spare = [key for key in sorted(pool) if key not in taken]
    return simple_sample(spare, min(max(n, 0), len(spare)), stream(seed, "practice"))


def draw(
    pool: Mapping[K, str],
    n: int,
    seed: int,
    method: str = RANDOM,
    reshuffle_later_sessions: bool = True,
) -> Draw[K]:
    """A reader's draw: the cases and their order in each task.

    Task 1's order is a shuffle of the drawn set; Task 2's is an independent shuffle, or
    Task 1's order when `reshuffle_later_sessions` is off.
    """
    chosen = draw_set(pool, n, seed, method)
    task1 = shuffled(chosen, stream(seed, "task1"))
    task2 = shuffled(chosen, stream(seed, "task2")) if reshuffle_later_sessions else list(task1)
    return Draw(task1=tuple(task1), task2=tuple(task2))
