"""Reliance on the aid: how readers used the retrieved images' majority vote.

For every aided condition (any condition but `unaided`) compared with `unaided` on the cases
a reader read in both: accuracy when the aid was right and when it was wrong; how often a
wrong aid was adopted (the aided answer equals the aid's wrong vote) against how often the
reader had given that wrong class without the aid; and the aid alone as its own "reader"
(its vote on each reader's cases) compared with the aided readers by OR-Hillis. Answer
changes between the sessions are in `tables.answer_changes`.

Every figure is also split by each reader grouping in `groups` (grouping name -> reader ->
group label, e.g. "role" and "experience" from the readers' profiles); readers without a
label are "unknown". Faulty-aid probes (readings whose aid was made misleading on purpose,
left out of everything else) get their own figures: how often readers were still right, and
how often they gave the misleading class the aid pushed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from app.analysis.endpoints import Blocks, Taxonomy, complete_blocks, endpoints
from app.analysis.mrmc import or_hillis
from app.analysis.responses import INITIAL_SUFFIX, UNAIDED, Array, Responses
from app.analysis.tables import ratio

AID = "aid_alone"
AID_ENDPOINTS = ("proportion_correct", "balanced_accuracy", "melanoma_sensitivity")


def _shares(mask: Array, blocks: Blocks) -> dict[str, Any]:
    """Reliance counts over the cases selected by `mask` (blocks: unaided, aided), against the
    vote of the aid each aided reading showed."""
    truth, vote = blocks.truth[mask], blocks.majority_vote[1][mask]
    unaided, aided = blocks.diagnosis[0][mask], blocks.diagnosis[1][mask]
    aid_right = vote == truth
    aid_wrong = ~aid_right
    return {
        "cases": int(mask.sum()),
        "aid_right": int(aid_right.sum()),
        "aid_wrong": int(aid_wrong.sum()),
        "aided_accuracy_aid_right": ratio((aided == truth)[aid_right].sum(), aid_right.sum()),
        "aided_accuracy_aid_wrong": ratio((aided == truth)[aid_wrong].sum(), aid_wrong.sum()),
        "unaided_accuracy_aid_right": ratio((unaided == truth)[aid_right].sum(), aid_right.sum()),
        "unaided_accuracy_aid_wrong": ratio((unaided == truth)[aid_wrong].sum(), aid_wrong.sum()),
        "wrong_aid_adopted": int((aided == vote)[aid_wrong].sum()),
        "wrong_aid_adopted_share": ratio((aided == vote)[aid_wrong].sum(), aid_wrong.sum()),
        "wrong_aid_class_unaided_share": ratio((unaided == vote)[aid_wrong].sum(), aid_wrong.sum()),
        "changed_to_aid": int(((aided == vote) & (unaided != vote)).sum()),
        "changed_against_aid": int(((aided != vote) & (unaided == vote)).sum()),
    }


def _aid_as_reader(blocks: Blocks, aided_name: str, taxonomy: Taxonomy | None) -> dict[str, Any]:
    """OR-Hillis of the aided readers against the aid's own vote on the same cases."""
    pair = Blocks(
        conditions=(aided_name, AID),
        readers=blocks.readers,
        reader=blocks.reader,
        case=blocks.case,
        truth=blocks.truth,
        majority_vote=blocks.majority_vote[[1, 1]],
        diagnosis=np.stack([blocks.diagnosis[1], blocks.majority_vote[1]]),
        confidence=blocks.confidence,
        seconds=blocks.seconds,
        taxonomy=blocks.taxonomy,
    )
    chosen = [e for e in endpoints(pair, taxonomy) if e.name in AID_ENDPOINTS]
    return {e.name: or_hillis(e, pair) for e in chosen}


def unaided_of(conditions: tuple[str, ...]) -> dict[str, str]:
    """Each aided condition and the unaided reading it is compared with: its own first look in
    an initial-then-revised design (`<aid>_initial`), else `unaided`."""
    out = {}
    for name in conditions:
        if name == UNAIDED or name.endswith(INITIAL_SUFFIX):
            continue
        if name + INITIAL_SUFFIX in conditions:
            out[name] = name + INITIAL_SUFFIX
        elif UNAIDED in conditions:
            out[name] = UNAIDED
    return out


def reliance(
    responses: Responses,
    taxonomy: Taxonomy | None = None,
    groups: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Reliance figures per aided condition (against `unaided`), pooled and per reader group."""
    out: dict[str, Any] = {
        "description": (
            "How readers used the aid (the majority vote of the retrieved images), on the "
            "cases each reader read both without and with it. Accuracy with the aid when the "
            "aid was right and when it was wrong (and the same cases without it); how often a "
            "wrong aid was adopted, against how often the reader gave that wrong class "
            "without the aid; and the aid alone scored as if it were a reader, compared with "
            "the aided readers by OR-Hillis (a positive 'aid_alone - ...' difference: the "
            "aid alone was right more often than the readers who saw it)."
        ),
        "probes": probe_results(responses, groups),
        "conditions": {},
    }
    compared = unaided_of(responses.conditions)
    if not compared:
        out["reason"] = "no unaided condition to compare with"
        return out
    for name, base_name in compared.items():
        base, index = responses.conditions.index(base_name), responses.conditions.index(name)
        blocks = complete_blocks(responses, [base, index])
        split: dict[str, dict[str, Any]] = {}
        for grouping, label_of in (groups or {}).items():
            labels = np.asarray(
                [label_of.get(reader, "unknown") for reader in responses.readers], dtype=object
            )
            of_case = labels[blocks.reader]
            split[grouping] = {g: _shares(of_case == g, blocks) for g in sorted(set(labels))}
        out["conditions"][name] = {
            "all": _shares(np.ones(len(blocks), dtype=bool), blocks),
            "groups": split,
            "aid_as_reader": _aid_as_reader(blocks, name, taxonomy),
        }
    return out


def _probe_counts(right: list[bool], adopted: list[bool]) -> dict[str, Any]:
    """Probe readings, right answers and misleading classes adopted, with their shares."""
    n = len(right)
    return {
        "readings": n,
        "correct": sum(right),
        "accuracy": ratio(sum(right), n),
        "misleading_adopted": sum(adopted),
        "misleading_adopted_share": ratio(sum(adopted), n),
    }


def probe_results(
    responses: Responses, groups: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, Any]:
    """How readers fared on the faulty-aid probes: overall, per condition, per reader group."""
    out: dict[str, Any] = {
        "description": (
            "Faulty-aid probes: readings whose aid was made to point at a wrong class on "
            "purpose (readers were told some would). They are left out of every other figure. "
            "'accuracy' is how often readers were still right; 'misleading_adopted' how often "
            "they gave the wrong class the aid pushed."
        ),
        "readings": 0,
    }
    probes = responses.probe_readings
    if probes is None:
        return {**out, "reason": "no faulty-aid probe readings in these data"}
    right = [t == d for t, d in zip(probes.truth, probes.diagnosis, strict=True)]
    adopted = [p >= 0 and p == d for p, d in zip(probes.probe_class, probes.diagnosis, strict=True)]

    def split(labels: list[str]) -> dict[str, dict[str, Any]]:
        return {
            label: _probe_counts(
                [x for x, g in zip(right, labels, strict=True) if g == label],
                [x for x, g in zip(adopted, labels, strict=True) if g == label],
            )
            for label in sorted(set(labels))
        }

    return {
        **out,
        **_probe_counts(right, adopted),
        "conditions": split(list(probes.condition)),
        "groups": {
            grouping: split([label_of.get(reader, "unknown") for reader in probes.reader])
            for grouping, label_of in (groups or {}).items()
        },
    }
