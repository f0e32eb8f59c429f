"""A study's design, frozen when the study first opens, so that a reviewer can check that the
study ran as registered.

The design is what decides what readers get and how the answers are read: the design and its
conditions (each with its k and options), the sessions, the wash-out, rotation and order,
the faulty-aid probes, the case pool (the bundle's digest, the pool's size and its case keys'
hash, cases per reader and how they are drawn), the classes and the confidence scale, and the
randomisation. Its canonical JSON and that text's SHA-256 (`app.analysis.fingerprint`) are
stored in `design_freeze` at the first opening and never again: reopening a closed study
keeps the first freeze. The settings page shows the hash and says what, if anything, differs
now (the wash-out may still change after opening; the design page locks only at the first
enrolment); `design.json` downloads it; the study report prints it.

The study's seed permutes the blocks of the randomisation: in clear it would let whoever sees
the design predict the next reader's arm. The design holds `sha256(salt:seed)` with a random
256-bit salt kept in the freeze row only, a commitment that the organiser can open after the
study by giving the salt and the seed (the `design.json` of a closed study carries both,
outside the hashed design). Each reader's own seed is drawn when they enrol, after the
freeze, and stays with their enrolment.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.analysis.fingerprint import canonical_json, sha256_text
from app.extensions import db
from app.models import Case, DesignFreeze, Study, StudyStatus
from app.survey.designs import Design
from app.survey.enrolment import conditions_of, design_of, sessions_of

FORMAT = "secbir-design/1"
# The design's top-level entries in words, for the list of what changed since the freeze.
PARTS = {
    "format": "the format",
    "design": "the design",
    "design_name": "the design",
    "sessions": "the number of sessions",
    "conditions": "the conditions",
    "washout_hours": "the wash-out",
    "rotate_later_sessions": "the rotation of later sessions",
    "reshuffle_later_sessions": "the order of later sessions",
    "probes": "the faulty-aid probes",
    "cases": "the case pool or the draw",
    "classes": "the classes",
    "confidence_scale": "the confidence scale",
    "randomisation": "the randomisation",
}
# The entries that only name things for people (see `substance`).
WORDS = ("design_name",)
CONDITION_WORDS = ("label", "short")
READER_SEEDS = (
    "drawn for each reader when they enrol (after this design was frozen) from the operating "
    "system's random source; it draws their cases and orders their sessions and probes"
)


def seed_commitment(seed: int, salt: str) -> str:
    """The salted hash of the study's seed that the design holds instead of the seed."""
    return sha256_text(f"{salt}:{seed}")


def case_keys(study: Study) -> list[str]:
    """The pool's case keys in the bundle's order (their hash names the pool: the same pool
    gives the same hash, whatever the study is called or where its images lie)."""
    return list(
        db.session.scalars(
            select(Case.case_key).where(Case.study_id == study.id).order_by(Case.position)
        )
    )


def study_design(study: Study, salt: str | None) -> dict[str, Any]:
    """The study's design as it is now, as plain JSON (see the module docstring). `salt`
    salts the seed's hash; None leaves the seed out (a study that has not opened)."""
    listed = conditions_of(study)
    keys = case_keys(study)
    pool = len(keys)
    design = design_of(study)
    return {
        "format": FORMAT,
        "design": design.value,
        "design_name": design.label,
        "sessions": sessions_of(study),
        "conditions": [
            {"key": c.key, "label": c.label, "short": c.short, **c.to_json()} for c in listed
        ],
        "washout_hours": float(study.washout_hours),
        "rotate_later_sessions": bool(study.rotate_later_sessions),
        "reshuffle_later_sessions": bool(study.reshuffle_later_sessions),
        "probes": {"share": float(study.probe_share)},
        "cases": {
            "pool": pool,
            "per_reader": min(study.cases_per_reader, pool),
            "sampling": study.sampling.value,
            "bundle_digest": study.bundle_digest,
            "case_keys_sha256": sha256_text("\n".join(keys)),
        },
        "classes": [{"code": c.code, "malignant": bool(c.malignant)} for c in study.classes],
        "confidence_scale": list(study.likert or []),
        "randomisation": {
            "readers_to_orders": (
                "balanced blocks in enrolment order, each block a permutation drawn from the "
                "study's seed"
                if design in (Design.CROSSOVER, Design.PER_CASE, Design.INITIAL_REVISED)
                else "none: every reader reads the conditions in the listed order"
            ),
            "study_seed_sha256": None if salt is None else seed_commitment(study.seed, salt),
            "reader_seeds": READER_SEEDS,
        },
    }


def substance(design: dict[str, Any]) -> dict[str, Any]:
    """The design without the words it carries for people (the design's and the conditions'
    names): rewording them in a later version of the platform is no change of the design."""
    out = {key: value for key, value in design.items() if key not in WORDS}
    if isinstance(out.get("conditions"), list):
        out["conditions"] = [
            {k: v for k, v in c.items() if k not in CONDITION_WORDS} if isinstance(c, dict) else c
            for c in out["conditions"]
        ]
    return out


def frozen_of(study: Study) -> DesignFreeze | None:
    """The study's frozen design, None when it has not opened since freezes began."""
    return db.session.scalar(select(DesignFreeze).where(DesignFreeze.study_id == study.id))


def freeze(study: Study) -> DesignFreeze:
    """Freeze the study's design as it is (at its first opening); a study frozen before keeps
    its first freeze. Added to the session: the caller commits with the opening."""
    found = frozen_of(study)
    if found is not None:
        return found
    salt = secrets.token_hex(32)
    text = canonical_json(study_design(study, salt))
    record = DesignFreeze(study_id=study.id, design=text, sha256=sha256_text(text), seed_salt=salt)
    db.session.add(record)
    return record


def open_study(study: Study) -> DesignFreeze:
    """Open `study` to its readers, freezing its design the first time: every way of opening
    (the study's page, `flask study open`, the demo) goes through here."""
    study.status = StudyStatus.OPEN
    return freeze(study)


@dataclass(frozen=True)
class FreezeState:
    """What the settings page and the report say about a study's frozen design."""

    record: DesignFreeze | None
    design: dict[str, Any] | None  # the frozen design, parsed
    intact: bool  # the stored text still hashes to the stored SHA-256
    changed: list[str] = field(default_factory=list)  # parts that differ now, in words
    current: dict[str, Any] | None = None  # the design as it is now

    @property
    def sha256(self) -> str | None:
        """The frozen design's SHA-256 (None when not frozen)."""
        return None if self.record is None else self.record.sha256


def freeze_state(study: Study) -> FreezeState:
    """The study's frozen design checked against its hash and against the design now."""
    record = frozen_of(study)
    if record is None:
        return FreezeState(None, None, True, [], study_design(study, None))
    frozen = json.loads(record.design)
    current = study_design(study, record.seed_salt)
    intact = sha256_text(record.design) == record.sha256
    then, now = substance(frozen), substance(current)
    keys = sorted(set(then) | set(now))
    changed = list(dict.fromkeys(PARTS.get(k, k) for k in keys if then.get(k) != now.get(k)))
    return FreezeState(record, frozen, intact, changed, current)


def design_document(study: Study) -> dict[str, Any]:
    """What `design.json` holds: the frozen design and its hash, when it was frozen, whether
    the design differs now; after the study has closed, the seed and salt that open the
    seed's commitment (never while readers can still enrol)."""
    state = freeze_state(study)
    if state.record is None:
        return {
            "study": study.id,
            "frozen": False,
            "note": "This study has not been opened since designs are frozen: no frozen design.",
            "current": state.current,
        }
    document: dict[str, Any] = {
        "study": study.id,
        "frozen": True,
        "frozen_at": state.record.frozen_at.isoformat(timespec="seconds") + "Z",
        "sha256": state.record.sha256,
        "hash_matches": state.intact,
        "changed_since": state.changed,
        "design": state.design,
    }
    if study.status == StudyStatus.CLOSED:
        document["seed_reveal"] = {"seed": study.seed, "salt": state.record.seed_salt}
    return document
