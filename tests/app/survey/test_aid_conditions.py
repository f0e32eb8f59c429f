"""Every aid of a format-2 bundle as a study condition, read through the survey's pages.

One per-case randomised study on a bundle with all four aids holds five conditions: unaided,
plain CBIR with four unlabelled images, the 3-channel model's probabilities, SE-CBIR with six
labelled images and the saliency toggle, and the saliency map alone. A reader answers every
case; each page must show exactly its condition's aid (the right list, the right k, the right
classifier's figures, the overlay of the right orientation), record it with the answer, and
never show the case's truth, image id or lesion id.
"""

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Answer, Assignment, Case, Role, Study, StudyStatus
from app.organiser.exports import analysis_columns, response_rows
from app.survey.conditions import Condition
from studybundle.taxonomy import HAM10000
from tests.app.bundle_factory import make_bundle_v2
from tests.app.conftest import StudyRef, add_study, add_user, join_study
from tests.app.reading import (
    CONDITIONS,
    answer_case,
    assignments_of,
    consent,
    set_design,
    shown_images,
    stem,
    tiles,
    token_of,
)

NAMES = {info.code: info.name for info in HAM10000}


@pytest.fixture
def all_aids(app: Flask, tmp_path: Path) -> StudyRef:
    """A per-case study of 10 cases per reader on a bundle with every aid, five conditions."""
    bundle = make_bundle_v2(tmp_path / "bundle", cases=10, seed=5)
    ref = add_study(
        app, bundle, "All aids", status=StudyStatus.OPEN, cases_per_reader=10, washout_hours=0
    )
    set_design(app, ref, "per_case", [c.to_json() for c in CONDITIONS])
    return ref


def test_each_aid_condition_shows_its_own_aid_and_records_it(
    app: Flask, client: FlaskClient, all_aids: StudyRef, login: Callable
) -> None:
    reader = add_user(app, "aids@example.org", Role.READER)
    join_study(app, reader, all_aids)
    login(client, reader)
    consent(client, all_aids.id)
    plan = assignments_of(app, reader)
    assert Counter(row[3] for row in plan) == dict.fromkeys(range(5), 2)
    pages = {}
    for number, (_, _, case_id, condition, _) in enumerate(plan, start=1):
        pages[number] = (case_id, condition, answer_case(client, all_aids.id, 1, number))

    with app.app_context():
        for case_id, index, html in pages.values():
            case = db.session.get(Case, case_id)
            condition = CONDITIONS[index]
            for secret in (case.image_id, case.lesion_id, NAMES[case.truth] + " (truth)"):
                assert secret not in html
            overlay = f'data-saliency-src="/images/{case.saliency}"'
            assert (overlay in html) == condition.saliency
            assert ("AI saliency map" in html) == condition.saliency
            if condition.aid == "cbir":
                assert shown_images(html) == [stem(n.image) for n in case.neighbours_of("cbir", 4)]
                assert "tile unlabelled" in html and "Similar image 1," not in html
            elif condition.aid == "se_cbir":
                listed = case.neighbours_of("se_cbir", 6)
                assert shown_images(html) == [stem(n.image) for n in listed]
                assert re.findall(r'<figure class="tile cls-(\w+)">', html) == [
                    n.truth for n in listed
                ]
            else:
                assert tiles(html) == 0
            if condition.aid == "probabilities":
                expected = [round(100 * p) for p in case.probabilities["rgb"]]
                assert "from the image alone" in html and "rgb" not in html.split("<main")[1]
                assert [int(v) for v in re.findall(r"<meter[^>]*value=\"(\d+)\"", html)] == (
                    expected
                )
            else:
                assert "<meter" not in html

        answers = db.session.scalars(select(Answer).join(Assignment)).all()
        assert len(answers) == 10
        for answer in answers:
            condition = CONDITIONS[answer.assignment.condition]
            assert answer.shown["condition"] == condition.key
            assert answer.shown["saliency"] == condition.saliency
            case = answer.assignment.case
            if condition.shows_neighbours:
                listed = case.neighbours_of(condition.aid, condition.k)
                assert answer.neighbours_shown == [n.image_id for n in listed]
            else:
                assert answer.neighbours_shown == []
            if condition.aid == "probabilities":
                assert answer.shown["probabilities"] == pytest.approx(case.probabilities["rgb"])
        # The aid's vote in the results is the one beside the case: its own list at its k.
        study = db.session.get_one(Study, all_aids.id)
        by_case = {c.image_id: c for c in study.cases}

        def vote_beside(image_id: str, key: str) -> str:
            case = by_case[image_id]
            return {
                "cbir_k4_unlabelled": case.votes["cbir"]["4"],
                "se_cbir_saliency": case.votes["se_cbir"]["6"],
            }.get(key, case.majority_vote)

        columns = analysis_columns(study)
        listed = zip(
            columns["image_id"], columns["condition"], columns["majority_vote"], strict=True
        )
        assert all(vote == vote_beside(image, key) for image, key, vote in listed)
        rows = response_rows(study)
        assert len(rows) == 10
        assert all(r["majority_vote"] == vote_beside(r["image_id"], r["condition"]) for r in rows)
        assert any(
            case.votes["cbir"]["4"] != case.majority_vote for case in study.cases
        )  # the test can tell the two apart
    assert {CONDITIONS[i].key for i in range(5)} == {
        "unaided",
        "cbir_k4_unlabelled",
        "probabilities_rgb",
        "se_cbir_saliency",
        "unaided_saliency",
    }


def test_a_turned_case_shows_the_turned_saliency_map(
    app: Flask, client: FlaskClient, tmp_path: Path, login: Callable
) -> None:
    bundle = make_bundle_v2(tmp_path / "bundle", cases=4, seed=6)
    ref = add_study(
        app, bundle, "Turned", status=StudyStatus.OPEN, cases_per_reader=4, washout_hours=0
    )
    listed = [Condition(), Condition("se_cbir", 6, saliency=True)]
    set_design(app, ref, "sequential", [c.to_json() for c in listed])
    reader = add_user(app, "turned@example.org", Role.READER)
    join_study(app, reader, ref)
    login(client, reader)
    consent(client, ref.id)
    for number in range(1, 5):
        assert "data-saliency-src" not in answer_case(client, ref.id, 1, number)
    plan = [row for row in assignments_of(app, reader) if row[0] == 2]
    html = answer_case(client, ref.id, 2, 1)
    with app.app_context():
        case = db.session.get(Case, plan[0][2])
        assert f'data-saliency-src="/images/{case.saliency_rotated}"' in html
        assert stem(case.saliency) not in html
        overlay = case.saliency_rotated
    served = client.get(f"/images/{overlay}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    stranger = app.test_client()
    login(stranger, add_user(app, "stranger@example.org", Role.READER))
    assert stranger.get(f"/images/{overlay}").status_code == 404

    # How often the reader laid the map over the case is kept with the answer; a count the
    # page did not make (no script) or a tampered one is kept as unknown, the answer stored.
    for number, sent in ((2, "3"), (3, "lots"), (4, None)):
        url = f"/survey/{ref.id}/task/2/case/{number}"
        page = client.get(url)
        assert 'name="saliency_views"' in page.text
        form = {"diagnosis": "nv", "confidence": 3, "token": token_of(page)}
        if sent is not None:
            form["saliency_views"] = sent
        assert client.post(url, data=form).status_code == 303
    with app.app_context():
        study = db.session.get_one(Study, ref.id)
        rows = [r for r in response_rows(study) if r["session"] == 2]
        assert [r["saliency"] for r in rows] == [1, 1, 1, 1]
        assert [r["saliency_views"] for r in rows] == ["", 3, "", ""]
        unaided = [r for r in response_rows(study) if r["session"] == 1]
        assert {(r["saliency"], r["saliency_views"]) for r in unaided} == {(0, "")}


def test_the_design_page_offers_the_saliency_toggle_only_where_the_bundle_has_maps(
    app: Flask, client: FlaskClient, tmp_path: Path, organiser: object, login: Callable
) -> None:
    with_maps = make_bundle_v2(tmp_path / "maps", cases=4, seed=7)
    without = make_bundle_v2(
        tmp_path / "plain", cases=4, seed=8, aids=("se_cbir", "cbir", "probabilities")
    )
    login(client, organiser)
    for folder, name, ok in ((with_maps, "Maps", True), (without, "No maps", False)):
        ref = add_study(app, folder, name)
        form = {
            "design": "crossover",
            "conditions-0-aid": "unaided",
            "conditions-1-aid": "se_cbir",
            "conditions-1-k": "6",
            "conditions-1-labelled": "y",
            "conditions-1-saliency": "y",
            "probe_share": "0",
        }
        response = client.post(f"/admin/studies/{ref.id}/design", data=form)
        with app.app_context():
            keys = [Condition(**item).key for item in db.session.get_one(Study, ref.id).conditions]
        if ok:
            assert response.status_code == 303
            assert keys == ["unaided", "se_cbir_saliency"]
        else:
            assert response.status_code == 400
            assert "no saliency overlays" in response.get_data(as_text=True)
            assert "se_cbir_saliency" not in keys
