"""No design and no condition reveals a query's truth, image id or lesion id (SQLite, PostgreSQL).

A reader walks through a study of each design, with every condition format 1 bundles can show
(unaided, labelled and unlabelled neighbours at two k) and misleading-aid probes, and through
a study of every aid format 2 adds (CBIR, probabilities, the saliency map): every
response is checked for ids, every image for its content-hash name, every page for inline
script; pages of one condition are identical outside the neighbour tiles (so a probe looks
like any other aided reading), and unlabelled tiles carry no class at all.
"""

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Assignment, Enrolment, Study, StudyStatus
from app.survey.conditions import Condition
from tests.app.bundle_factory import make_bundle_v2
from tests.app.conftest import FakeClock, StudyRef, UserRef, add_study, join_study
from tests.app.leaks import (
    NEIGHBOURS,
    Recorder,
    check_images_are_named_by_content_hash,
    check_no_ids_anywhere,
    check_no_inline_script_or_style,
    mask,
)
from tests.app.reading import consent, token_of

UNAIDED = Condition()
SE6 = Condition("se_cbir", 6)
SE3_UNLABELLED = Condition("se_cbir", 3, labelled=False)
DESIGNS = {
    "crossover": [UNAIDED, SE3_UNLABELLED, SE6],
    "per_case": [UNAIDED, SE3_UNLABELLED, SE6],
    "initial_revised": [SE3_UNLABELLED, SE6],
}
CASE_PAGE = re.compile(r"/task/(\d+)/case/(\d+)$")


def walk_study(
    app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef, clock: FakeClock
) -> tuple[list, dict[tuple[int, int], list[str]]]:
    """The reader's whole way, following the app's own redirects; every case page kept by
    (condition, phase): phase 0 for the first look of an initial-then-revised reading."""
    rec = Recorder(client)
    rec.get(f"/survey/{study.id}/")
    consent(client, study.id)
    rec.get(f"/survey/{study.id}/information")
    pages: dict[tuple[int, int], list[str]] = defaultdict(list)
    for _ in range(200):
        target = rec.get(f"/survey/{study.id}/continue").headers["Location"]
        if target.endswith("/done"):
            rec.get(target)
            with app.app_context():
                enrolment = db.session.scalar(select(Enrolment))
                if enrolment.finished_at is not None:
                    return rec.responses, pages
            clock.advance(hours=24, seconds=1)  # the next task opens after the wash-out
            continue
        if not CASE_PAGE.search(target):
            instructions = rec.get(target).get_data(as_text=True)  # a task's instructions
            target = re.search(r'href="([^"]*/case/\d+)"', instructions).group(1)
        page = rec.get(target)
        assert page.status_code == 200, (target, page.status_code)
        task, number = (int(x) for x in CASE_PAGE.search(target).groups())
        with app.app_context():
            assignment = db.session.scalar(
                select(Assignment).where(
                    Assignment.session == task, Assignment.position == number - 1
                )
            )
            key = (assignment.condition, int(assignment.initial_diagnosis is not None))
        html = page.get_data(as_text=True)
        pages[key].append(html)
        saved = rec.post(target, data={"diagnosis": "nv", "confidence": 3, "token": token_of(page)})
        assert saved.status_code == 303
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_no_design_or_condition_reveals_the_truth(
    app: Flask,
    client: FlaskClient,
    reader: UserRef,
    study: StudyRef,
    login: Callable,
    clock: FakeClock,
    design: str,
) -> None:
    listed = DESIGNS[design]
    with app.app_context():
        record = db.session.get(Study, study.id)
        record.design = design
        record.conditions = [c.to_json() for c in listed]
        record.cases_per_reader = 10 if design == "crossover" else 20
        record.probe_share = 0.34
        record.information = "Some of the AI's help is deliberately misleading."
        db.session.commit()
    login(client, reader)
    responses, pages = walk_study(app, client, study, reader, clock)
    walk = {"responses": responses}
    check_no_ids_anywhere(app, study, walk)
    check_images_are_named_by_content_hash(app, walk, client)
    check_no_inline_script_or_style(walk)
    with app.app_context():
        probes = db.session.scalar(select(Assignment).where(Assignment.probe.is_(True)))
        assert probes is not None  # the walk met at least one probe
    for (index, _), group in pages.items():
        condition = listed[index]
        # The last case of a task says "finish" instead of "next": compare the others.
        masked = {mask(NEIGHBOURS.sub("NEIGHBOURS", p)) for p in group}
        masked = {re.sub(r"Save and (finish Task N|next case)", "SAVE", p) for p in masked}
        assert len(masked) == 1, (design, condition.key)
        for page in group:
            section = NEIGHBOURS.search(page)
            if not condition.shows_neighbours or section is None:
                continue
            tiles = re.findall(r'<figure class="tile([^"]*)"', section.group(0))
            assert len(tiles) == condition.k
            if not condition.labelled:
                assert set(tiles) == {" unlabelled"}
                assert "labelled " not in section.group(0) and "cls-" not in section.group(0)


def test_no_aid_of_a_format_2_bundle_reveals_the_truth(
    app: Flask,
    client: FlaskClient,
    reader: UserRef,
    login: Callable,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    # Every aid format 2 adds: CBIR lists, both classifiers' probabilities, the saliency map
    # (with an aid and alone), in one per-case study with misleading-aid probes.
    listed = [
        UNAIDED,
        Condition("cbir", 4, labelled=False),
        Condition("probabilities", classifier="rgb"),
        Condition("probabilities"),
        Condition("se_cbir", 6, saliency=True),
        Condition(saliency=True),
    ]
    bundle = make_bundle_v2(tmp_path / "bundle", cases=24, seed=9)
    study = add_study(app, bundle, "All aids", status=StudyStatus.OPEN, washout_hours=24.0)
    with app.app_context():
        record = db.session.get(Study, study.id)
        record.design = "per_case"
        record.conditions = [c.to_json() for c in listed]
        record.cases_per_reader = 24
        record.probe_share = 0.34
        record.information = "Some of the AI's help is deliberately misleading."
        db.session.commit()
    join_study(app, reader, study)
    login(client, reader)
    responses, pages = walk_study(app, client, study, reader, clock)
    walk = {"responses": responses}
    check_no_ids_anywhere(app, study, walk)
    check_images_are_named_by_content_hash(app, walk, client)
    check_no_inline_script_or_style(walk)
    assert {index for index, _ in pages} == set(range(len(listed)))
    with app.app_context():
        probes = db.session.scalars(select(Assignment).where(Assignment.probe.is_(True))).all()
        assert {listed[a.condition].aid for a in probes} >= {"cbir", "probabilities"}
        for assignment in probes:  # a probe names a wrong class, never the truth
            assert assignment.answer.shown["probe_class"] != assignment.case.truth
