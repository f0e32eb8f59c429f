"""Seeded synthetic reader studies for the MRMCaov reference figures.

Writes three data sets next to this file, in the neutral long format of
``/work/shared/reference/mrmc/*.csv`` (one row per answer; columns reader, case,
truth, modality, session, diagnosis, confidence):

- ``per_case_randomised.csv``: 10 readers x 90 cases, 3 modalities; every reader
  reads every case once, the case's modality rotated across readers.
- ``initial_revised.csv``: 8 readers x 80 cases, 2 aids; every reading has an
  initial unaided answer (``<aid>_initial``) and a revised one (``<aid>``).
- ``per_case_subsets.csv``: 12 readers, each a random 40 of 120 cases, read once,
  2 modalities balanced within reader.

Pure Python + numpy, fixed seeds: running it again writes identical files.
Usage: ``python tests/reference/mrmc/generate.py [OUTPUT_DIR]``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
COLUMNS = ("reader", "case", "truth", "modality", "session", "diagnosis", "confidence")

# Log-odds of a correct answer, relative to the overall level, per true class.
CLASS_EASE = {
    "akiec": -0.4,
    "bcc": 0.0,
    "bkl": -0.3,
    "df": 0.0,
    "mel": -0.1,
    "nv": 0.3,
    "vasc": 0.5,
}

# Where a wrong answer goes, per true class (relative weights).
CONFUSION = {
    "akiec": {"bkl": 0.35, "bcc": 0.30, "mel": 0.15, "nv": 0.10, "df": 0.10},
    "bcc": {"bkl": 0.25, "akiec": 0.25, "nv": 0.20, "mel": 0.15, "vasc": 0.10, "df": 0.05},
    "bkl": {"nv": 0.30, "mel": 0.25, "akiec": 0.20, "bcc": 0.15, "df": 0.10},
    "df": {"nv": 0.40, "bkl": 0.30, "bcc": 0.15, "mel": 0.15},
    "mel": {"nv": 0.50, "bkl": 0.30, "bcc": 0.08, "akiec": 0.05, "df": 0.04, "vasc": 0.03},
    "nv": {"mel": 0.45, "bkl": 0.30, "df": 0.12, "bcc": 0.08, "vasc": 0.05, "akiec": 0.05},
    "vasc": {"nv": 0.30, "bcc": 0.25, "mel": 0.25, "bkl": 0.20},
}

BASE_LOGIT = 0.50  # about 62 % correct for an average reader on an average case
READER_SD = 0.35  # reader skill (log-odds)
CASE_SD = 0.80  # case difficulty (log-odds)
CONF_SD = 1.00  # spread of the latent confidence


def class_counts(n_cases: int, mel: int) -> dict[str, int]:
    """Case mix: `mel` melanomas, the rest in HAM10000-like proportions."""
    rest = {"nv": 0.56, "bkl": 0.18, "bcc": 0.12, "akiec": 0.07, "df": 0.035, "vasc": 0.035}
    n_rest = n_cases - mel
    counts = {k: int(np.floor(v * n_rest)) for k, v in rest.items()}
    counts["df"] = max(counts["df"], 2)
    counts["vasc"] = max(counts["vasc"], 2)
    counts["nv"] += n_rest - sum(counts.values())
    counts["mel"] = mel
    return counts


class Simulator:
    """Answers of simulated readers: logistic correctness, confusion, confidence."""

    def __init__(
        self,
        rng: np.random.Generator,
        readers: list[str],
        cases: list[str],
        truth: dict[str, str],
        modality_effect: dict[str, float],
    ):
        self.rng = rng
        self.truth = truth
        self.modality_effect = modality_effect
        self.skill = dict(zip(readers, rng.normal(0.0, READER_SD, len(readers)), strict=True))
        self.conf_bias = dict(zip(readers, rng.normal(0.0, 0.35, len(readers)), strict=True))
        self.ease = dict(zip(cases, rng.normal(0.0, CASE_SD, len(cases)), strict=True))

    def p_correct(self, reader: str, case: str, modality: str) -> float:
        eta = (
            BASE_LOGIT
            + self.skill[reader]
            + self.ease[case]
            + CLASS_EASE[self.truth[case]]
            + self.modality_effect[modality]
        )
        return 1.0 / (1.0 + np.exp(-eta))

    def wrong_class(self, truth: str, avoid: str | None = None) -> str:
        options = {k: w for k, w in CONFUSION[truth].items() if k != avoid}
        keys = sorted(options)
        weights = np.array([options[k] for k in keys])
        return keys[self.rng.choice(len(keys), p=weights / weights.sum())]

    def confidence(self, reader: str, case: str, correct: bool) -> int:
        # Higher when right; a little higher on easy cases; reader-specific bias.
        mean = 2.8 + 0.6 * correct + 0.25 * self.ease[case] + self.conf_bias[reader]
        return int(np.clip(np.rint(self.rng.normal(mean, CONF_SD)), 1, 5))

    def answer(self, reader: str, case: str, modality: str) -> tuple[str, int]:
        truth = self.truth[case]
        correct = self.rng.random() < self.p_correct(reader, case, modality)
        diagnosis = truth if correct else self.wrong_class(truth)
        return diagnosis, self.confidence(reader, case, correct)


def make_cases(rng: np.random.Generator, n_cases: int, mel: int):
    """Case ids C0000.., a shuffled truth per case, and a class-stratified rank order.

    The rank order lists the cases class by class (random order within a class), so
    consecutive ranks, hence the residues rank % k used by the rotations, spread every
    class evenly over the modalities.
    """
    cases = [f"C{i:04d}" for i in range(n_cases)]
    counts = class_counts(n_cases, mel)
    labels = [c for c in CLASSES for _ in range(counts[c])]
    labels = [labels[i] for i in rng.permutation(n_cases)]
    truth = dict(zip(cases, labels, strict=True))
    ranked = []
    for c in CLASSES:
        members = [k for k in cases if truth[k] == c]
        ranked += [members[i] for i in rng.permutation(len(members))]
    return cases, truth, ranked


def rotation_offsets(n_readers: int, n_arms: int) -> list[int]:
    """Offsets 0, 1, .., n_arms-1, 0, 1, ..: as balanced over readers as n allows."""
    return [r % n_arms for r in range(n_readers)]


def check_melanoma_balance(rows: list[dict]) -> None:
    """Every reader has >= 2 melanomas and >= 2 non-melanomas in every modality."""
    tally: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        t = tally.setdefault((row["reader"], row["modality"]), [0, 0])
        t[row["truth"] == "mel"] += 1
    modalities = {m for _, m in tally}
    readers = {r for r, _ in tally}
    for r in readers:
        for m in modalities:
            non_mel, mel = tally.get((r, m), [0, 0])
            if mel < 2 or non_mel < 2:
                raise AssertionError(f"{r} in {m}: {mel} melanomas, {non_mel} others")


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def per_case_randomised(seed: int = 20250101) -> list[dict]:
    rng = np.random.default_rng(seed)
    arms = ("unaided", "cbir", "se_cbir")
    readers = [f"R{i + 1:02d}" for i in range(10)]
    cases, truth, ranked = make_cases(rng, 90, mel=16)
    sim = Simulator(rng, readers, cases, truth, {"unaided": 0.0, "cbir": 0.15, "se_cbir": 0.35})
    rank = {c: i for i, c in enumerate(ranked)}
    rows = []
    for reader, offset in zip(readers, rotation_offsets(len(readers), len(arms)), strict=True):
        for case in cases:
            modality = arms[(rank[case] + offset) % len(arms)]
            diagnosis, conf = sim.answer(reader, case, modality)
            rows.append(
                dict(
                    reader=reader,
                    case=case,
                    truth=truth[case],
                    modality=modality,
                    session=1,
                    diagnosis=diagnosis,
                    confidence=conf,
                )
            )
    return rows


def initial_revised(seed: int = 20250202) -> list[dict]:
    rng = np.random.default_rng(seed)
    aids = ("se_cbir", "cbir")
    # P(a wrong initial answer is revised to the right one), P(a right one is
    # revised to a wrong one), P(a wrong one is revised to another wrong one).
    to_right = {"se_cbir": 0.32, "cbir": 0.18}
    to_wrong = {"se_cbir": 0.025, "cbir": 0.05}
    wrong_to_wrong = {"se_cbir": 0.04, "cbir": 0.06}
    readers = [f"R{i + 1:02d}" for i in range(8)]
    cases, truth, ranked = make_cases(rng, 80, mel=14)
    sim = Simulator(rng, readers, cases, truth, {"unaided": 0.0})
    rank = {c: i for i, c in enumerate(ranked)}
    rows = []
    for reader, offset in zip(readers, rotation_offsets(len(readers), len(aids)), strict=True):
        for case in cases:
            aid = aids[(rank[case] + offset) % len(aids)]
            t = truth[case]
            initial, conf0 = sim.answer(reader, case, "unaided")
            u = rng.random()
            if initial != t and u < to_right[aid]:
                revised, conf1 = t, sim.confidence(reader, case, True)
            elif initial != t and u < to_right[aid] + wrong_to_wrong[aid]:
                revised, conf1 = (
                    sim.wrong_class(t, avoid=initial),
                    sim.confidence(reader, case, False),
                )
            elif initial == t and u < to_wrong[aid]:
                revised, conf1 = sim.wrong_class(t), sim.confidence(reader, case, False)
            else:
                # Kept: the neighbours may still firm up (or shake) the confidence.
                step = rng.choice(
                    [-1, 0, 1], p=[0.08, 0.67, 0.25] if initial == t else [0.25, 0.67, 0.08]
                )
                revised, conf1 = initial, int(np.clip(conf0 + step, 1, 5))
            common = dict(reader=reader, case=case, truth=t, session=1)
            rows.append(
                dict(common, modality=f"{aid}_initial", diagnosis=initial, confidence=conf0)
            )
            rows.append(dict(common, modality=aid, diagnosis=revised, confidence=conf1))
    return rows


def per_case_subsets(seed: int = 20250303) -> list[dict]:
    rng = np.random.default_rng(seed)
    arms = ("unaided", "se_cbir")
    readers = [f"R{i + 1:02d}" for i in range(12)]
    cases, truth, _ = make_cases(rng, 120, mel=20)
    sim = Simulator(rng, readers, cases, truth, {"unaided": 0.0, "se_cbir": 0.3})
    rows = []
    for reader in readers:
        # A random 40 with at least 4 melanomas and 4 others (redrawn otherwise).
        while True:
            subset = sorted(rng.choice(len(cases), size=40, replace=False))
            n_mel = sum(truth[cases[i]] == "mel" for i in subset)
            if 4 <= n_mel <= 36:
                break
        # Modalities balanced within the reader and within melanoma / other:
        # order the subset melanomas first (random order within each group) and
        # alternate the two modalities from a random start.
        mel = [cases[i] for i in subset if truth[cases[i]] == "mel"]
        other = [cases[i] for i in subset if truth[cases[i]] != "mel"]
        order = [mel[i] for i in rng.permutation(len(mel))] + [
            other[i] for i in rng.permutation(len(other))
        ]
        start = int(rng.integers(2))
        modality = {c: arms[(i + start) % 2] for i, c in enumerate(order)}
        for case in sorted(order):
            diagnosis, conf = sim.answer(reader, case, modality[case])
            rows.append(
                dict(
                    reader=reader,
                    case=case,
                    truth=truth[case],
                    modality=modality[case],
                    session=1,
                    diagnosis=diagnosis,
                    confidence=conf,
                )
            )
    return rows


SETS = {
    "per_case_randomised": per_case_randomised,
    "initial_revised": initial_revised,
    "per_case_subsets": per_case_subsets,
}


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, make in SETS.items():
        rows = make()
        check_melanoma_balance(rows)
        write(out_dir / f"{name}.csv", rows)
        print(f"{name}.csv: {len(rows)} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
