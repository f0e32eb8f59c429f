"""Preview as a reader: an organiser walks a study's consent page and a sample case of each
condition of its design, rendered by the readers' templates, and nothing is written.

Who may reach the preview (the study's organisers and admins; not readers, not an organiser
of another study) is in test_authz_matrix; here the pages, what they show and hide, and that
every table is byte for byte the same after a walk through every page, GET and POST.
"""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Case, Study, StudyStatus
from app.survey.conditions import Condition
from tests.app.bundle_factory import make_bundle_v2
from tests.app.conftest import StudyRef, UserRef, add_study
from tests.app.reading import CONDITIONS, set_design, shown_images, stem, tiles

BANNER = "Preview as a reader"


@pytest.fixture
def all_aids(app: Flask, tmp_path: Path, organiser: UserRef) -> StudyRef:
    """A per-case study in draft on a bundle with every aid: five conditions."""
    bundle = make_bundle_v2(tmp_path / "bundle", cases=10, seed=5)
    ref = add_study(app, bundle, "All aids", status=StudyStatus.DRAFT, cases_per_reader=10)
    set_design(app, ref, "per_case", [c.to_json() for c in CONDITIONS])
    return ref


def snapshot(app: Flask) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: what "nothing was written" is checked against."""
    with app.app_context():
        return {
            table.name: sorted(
                (tuple(str(value) for value in row) for row in db.session.execute(table.select())),
            )
            for table in db.metadata.sorted_tables
        }


def case_url(study_id: int, number: int) -> str:
    """The URL of sample case `number` of the study's preview."""
    return f"/survey/{study_id}/preview/case/{number}"


def sample_cases(app: Flask, study_id: int) -> list[Case]:
    """The study's cases in bundle order, as the preview takes them (sample n: the n-th)."""
    with app.app_context():
        cases = db.session.scalars(
            select(Case).where(Case.study_id == study_id).order_by(Case.position, Case.id)
        ).all()
        for case in cases:
            db.session.expunge(case)
        return list(cases)


def test_the_preview_walks_every_condition_and_writes_nothing(
    app: Flask, client: FlaskClient, organiser: UserRef, all_aids: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    study_page = client.get(f"/admin/studies/{all_aids.id}").get_data(as_text=True)
    assert f'href="/survey/{all_aids.id}/preview/"' in study_page
    before = snapshot(app)

    consent = client.get(f"/survey/{all_aids.id}/preview/")
    html = consent.get_data(as_text=True)
    assert consent.status_code == 200 and BANNER in html
    # The draft study still shows the consent form, posting back to the preview.
    assert f'action="/survey/{all_aids.id}/preview/"' in html and "I agree" in html
    agreed = client.post(f"/survey/{all_aids.id}/preview/", data={"consent": "y"})
    assert agreed.status_code == 303 and agreed.location.endswith(case_url(all_aids.id, 1))

    cases = sample_cases(app, all_aids.id)
    pages = {}
    for number in range(1, len(CONDITIONS) + 1):
        page = client.get(case_url(all_aids.id, number))
        assert page.status_code == 200, number
        html = page.get_data(as_text=True)
        assert BANNER in html and "Nothing you do here is saved" in html
        # The form posts to the preview, and the organiser's own settings are not offered.
        assert f'action="{case_url(all_aids.id, number)}"' in html
        assert "/survey/preferences/shortcuts" not in html
        case = cases[number - 1]
        for secret in (case.image_id, case.lesion_id, case.case_key):
            assert secret not in html, (number, secret)
        assert stem(case.image) in html
        pages[number] = (html, case)
        posted = client.post(case_url(all_aids.id, number), data={"diagnosis": "mel"})
        following = case_url(all_aids.id, number + 1)
        if number == len(CONDITIONS):
            following = f"/survey/{all_aids.id}/preview/"
        assert posted.status_code == 303 and posted.location.endswith(following)

    unaided, cbir, probabilities, se_cbir, saliency = (pages[n] for n in range(1, 6))
    assert tiles(unaided[0]) == 0 and "probabilities-title" not in unaided[0]
    # Plain CBIR, four images without their classes.
    assert tiles(cbir[0]) == 4 and "tile unlabelled" in cbir[0] and "tile cls-" not in cbir[0]
    # The 3-channel model's figures, and no similar images.
    assert "probabilities-title" in probabilities[0] and tiles(probabilities[0]) == 0
    assert "from the image alone" in probabilities[0] and "3-channel" not in probabilities[0]
    # SE-CBIR with six labelled images and the overlay's toggle.
    assert tiles(se_cbir[0]) == 6 and "tile cls-" in se_cbir[0]
    assert stem(se_cbir[1].saliency) in se_cbir[0]
    assert tiles(saliency[0]) == 0 and stem(saliency[1].saliency) in saliency[0]

    assert snapshot(app) == before


def test_the_shown_neighbours_are_the_case_own_at_the_condition_k(
    app: Flask, client: FlaskClient, organiser: UserRef, all_aids: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    with app.app_context():
        case = db.session.scalars(
            select(Case).where(Case.study_id == all_aids.id).order_by(Case.position, Case.id)
        ).all()[1]
        wanted = [stem(n.image) for n in case.neighbours_of("cbir", 4)]
    html = client.get(case_url(all_aids.id, 2)).get_data(as_text=True)
    assert shown_images(html) == wanted


def test_an_initial_then_revised_design_previews_both_answers(
    app: Flask, client: FlaskClient, organiser: UserRef, all_aids: StudyRef, login: Callable
) -> None:
    set_design(app, all_aids, "initial_revised", [Condition("se_cbir", 3).to_json()])
    login(client, organiser)
    before = snapshot(app)
    first = client.get(case_url(all_aids.id, 1)).get_data(as_text=True)
    revised = client.get(case_url(all_aids.id, 2)).get_data(as_text=True)
    assert "first look, before the aid" in first and "answer revised with the aid" in first
    assert "First give your own diagnosis" in first and tiles(first) == 0
    assert "confirm it or change it" in revised and tiles(revised) == 3
    # No first answer is made up: nothing is selected on the revised page.
    assert not re.search(r'name="diagnosis"[^>]*checked', revised)
    assert client.get(case_url(all_aids.id, 3)).status_code == 302  # no third sample
    assert snapshot(app) == before


def test_a_thesis_study_previews_task_2_turned(
    app: Flask, client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    cases = sample_cases(app, study.id)
    task1 = client.get(case_url(study.id, 1)).get_data(as_text=True)
    task2 = client.get(case_url(study.id, 2)).get_data(as_text=True)
    assert "Task 1" in task1 and stem(cases[0].image) in task1 and tiles(task1) == 0
    assert "Task 2" in task2 and stem(cases[1].image_rotated) in task2 and tiles(task2) == 6
    assert "turned by 180" in task2


def test_staff_of_the_study_see_the_images_and_styles_the_preview_loads(
    client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    html = client.get(case_url(study.id, 2)).get_data(as_text=True)
    for url in re.findall(r'(?:src|href)="(/(?:images|survey)/[^"]+)"', html):
        if "/preview/" in url:
            continue
        assert client.get(url).status_code == 200, url


def test_an_organiser_of_another_study_and_its_readers_get_no_preview(
    app: Flask,
    client: FlaskClient,
    other_organiser: UserRef,
    reader: UserRef,
    study: StudyRef,
    login: Callable,
) -> None:
    login(client, other_organiser)
    assert client.get(f"/survey/{study.id}/preview/").status_code == 404
    assert client.get(case_url(study.id, 1)).status_code == 404
    client.post("/logout")
    login(client, reader)
    assert client.get(f"/survey/{study.id}/preview/").status_code == 403
    assert client.post(case_url(study.id, 1), data={}).status_code == 403
    with app.app_context():
        assert db.session.get(Study, study.id).enrolments == []
