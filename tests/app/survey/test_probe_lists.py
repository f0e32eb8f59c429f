"""Probes retrieved for their own case (issue 22, point 5): with the bundle's
class_neighbours, a probe shows a genuine list's class-by-rank pattern that votes the wrong
class, filled with the case's own nearest images of each class; without them, the genuine
list of another case as before (tests/app/organiser/test_study_designs.py)."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.bundle import copy_study, served_name
from app.extensions import db
from app.models import Answer, Assignment, Case, ClassNeighbour, Role, Study, StudyStatus
from app.survey.presentation import class_lists
from app.survey.probes import own_in_pattern
from studybundle.vote import majority_vote
from tests.app.bundle_factory import make_bundle_v2
from tests.app.conftest import StudyRef, add_study, add_user, join_study
from tests.app.reading import SE6, answer_case, consent, set_design, shown_images, stem


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A 12-case bundle whose SE-CBIR aid carries up to six images of each class."""
    return make_bundle_v2(
        tmp_path / "bundle", cases=12, seed=3, aids=("se_cbir",), class_neighbours=6
    )


@pytest.fixture
def study(app: Flask, bundle: Path) -> StudyRef:
    """The bundle imported as an open per-case study, SE-CBIR at k = 6, 30 % probes."""
    ref = add_study(
        app, bundle, "Probes", status=StudyStatus.OPEN, cases_per_reader=10, washout_hours=0
    )
    set_design(app, ref, "per_case", [SE6], cases_per_reader=10, probe_share=0.3)
    return ref


def test_the_import_stores_each_cases_nearest_images_by_class(
    app: Flask, bundle: Path, study: StudyRef
) -> None:
    queries = json.loads((bundle / "queries.json").read_text())
    with app.app_context():
        for query in queries:
            case = db.session.scalar(select(Case).where(Case.image_id == query["image_id"]))
            stored = {
                code: [(n.rank, n.image_id, n.lesion_id, n.similarity, n.image) for n in items]
                for code, items in class_lists(case, "se_cbir").items()
            }
            given = {
                code: [
                    (
                        n["rank"],
                        n["image_id"],
                        n["lesion_id"],
                        n["similarity"],
                        served_name(n["image"].removeprefix("images/")),
                    )
                    for n in items
                ]
                for code, items in query["aids"]["se_cbir"]["class_neighbours"].items()
                if items
            }
            assert stored == given
            assert all(
                n.truth == code
                for code, items in class_lists(case, "se_cbir").items()
                for n in items
            )
        # A copy of the study keeps them (the same rows, its own cases).
        source = db.session.get(Study, study.id)
        copied = copy_study(source, "Copy")
        db.session.flush()
        before = sorted(
            (n.aid, n.truth, n.rank, n.image_id) for c in source.cases for n in c.class_neighbours
        )
        after = sorted(
            (n.aid, n.truth, n.rank, n.image_id) for c in copied.cases for n in c.class_neighbours
        )
        assert before == after and before
        db.session.rollback()


def reading(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable
) -> dict[tuple[int, int], str]:
    """A reader consents and answers the ten cases; each page's HTML by (session, position)."""
    reader = add_user(app, "probe-reader@example.org", Role.READER)
    join_study(app, reader, study)
    login(client, reader)
    consent(client, study.id)
    return {(1, number - 1): answer_case(client, study.id, 1, number) for number in range(1, 11)}


def pattern_of(assignment: Assignment) -> list[str]:
    """The class-by-rank pattern a probe fills: its source case's genuine list, or without
    one its own list with the voted class and the probe's class trading places."""
    if assignment.probe_source is not None:
        donor = db.session.get(Case, assignment.probe_source)
        return [n.truth for n in donor.neighbours_of("se_cbir", 6)]
    truths = [n.truth for n in assignment.case.neighbours_of("se_cbir", 6)]
    voted, wrong = majority_vote(truths), assignment.probe_class
    swap = {voted: wrong, wrong: voted}
    return [swap.get(code, code) for code in truths]


def test_a_probe_shows_its_own_nearest_images_in_a_genuine_lists_pattern(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable
) -> None:
    pages = reading(app, client, study, login)
    with app.app_context():
        labels = {n.image_id: n.truth for n in db.session.scalars(select(ClassNeighbour))}
        probes = db.session.scalars(select(Answer).join(Assignment).where(Assignment.probe)).all()
        assert len(probes) == 3
        assert any(answer.assignment.probe_source is not None for answer in probes)
        for answer in probes:
            assignment = answer.assignment
            case, wrong = assignment.case, assignment.probe_class
            pattern = pattern_of(assignment)
            own = class_lists(case, "se_cbir")
            expected = own_in_pattern(pattern, own)
            assert expected is not None
            assert answer.neighbours_shown == [n.image_id for n in expected]
            # The pattern's mixture and ranks, the wrong class's vote, this case's own images.
            assert [labels[i] for i in answer.neighbours_shown] == pattern
            assert majority_vote(pattern) == wrong != case.truth
            mine = {n.image_id for items in own.values() for n in items}
            assert set(answer.neighbours_shown) <= mine
            assert case.image_id not in answer.neighbours_shown
            html = pages[(assignment.session, assignment.position)]
            assert shown_images(html) == [stem(n.image) for n in expected]
            for secret in (case.image_id, case.lesion_id):
                assert secret not in html
            # The reader may load every tile, also one that no genuine list holds.
            for name in shown_images(html):
                assert client.get(f"/images/{name}.jpg").status_code == 200


def test_a_probe_without_a_source_swaps_the_classes_of_its_own_list(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable
) -> None:
    reader = add_user(app, "no-source@example.org", Role.READER)
    join_study(app, reader, study)
    login(client, reader)
    consent(client, study.id)
    with app.app_context():
        for assignment in db.session.scalars(select(Assignment).where(Assignment.probe)):
            assignment.probe_source = None
        db.session.commit()
    for number in range(1, 11):
        answer_case(client, study.id, 1, number)
    with app.app_context():
        labels = {n.image_id: n.truth for n in db.session.scalars(select(ClassNeighbour))}
        probes = db.session.scalars(select(Answer).join(Assignment).where(Assignment.probe)).all()
        assert probes
        for answer in probes:
            case, wrong = answer.assignment.case, answer.assignment.probe_class
            pattern = pattern_of(answer.assignment)
            expected = own_in_pattern(pattern, class_lists(case, "se_cbir"))
            assert expected is not None
            assert answer.neighbours_shown == [n.image_id for n in expected]
            shown = [labels[i] for i in answer.neighbours_shown]
            assert shown == pattern and majority_vote(shown) == wrong
