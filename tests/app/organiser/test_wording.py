"""What the second walk found confusing (issue 24): organisers' and readers' words instead of
raw keys, the settings and design of a three-arm study, a New study page, messages shown
once, the preview's revised sample, a 0.02-hour wash-out, the favicon, a finished reader's
welcome, and each reader's condition order and next opening on the progress page."""

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Study, StudyStatus
from app.survey.conditions import Condition, three_arm
from tests.app.bundle_factory import make_bundle_v2
from tests.app.conftest import FakeClock, StudyRef, UserRef, add_study
from tests.app.reading import complete_task, consent, finish_task1, set_design, set_study


def test_a_three_arm_study_settings_name_its_conditions_in_words(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    set_study(app, study, design="crossover", conditions=[c.to_json() for c in three_arm(6)])
    client = app.test_client()
    login(client, organiser)
    page = client.get(f"/admin/studies/{study.id}").text
    assert "6 SE-CBIR neighbours per case" not in page
    assert "3 tasks, one condition each, in an order balanced over readers" in page
    assert "CBIR similar images, 6 labelled" in page
    assert "Wash-out between one task and the next (hours)" in page
    assert "between Task 1 and Task 2" not in page


def test_the_design_page_names_aids_in_words_and_rows_offer_only_their_options(
    app: Flask, tmp_path: Path, organiser: UserRef, login: Callable
) -> None:
    bundle = make_bundle_v2(tmp_path / "bundle", cases=10, seed=5)
    ref = add_study(app, bundle, "All aids", status=StudyStatus.DRAFT, cases_per_reader=10)
    client = app.test_client()
    login(client, organiser)
    url = f"/admin/studies/{ref.id}/design"
    page = client.get(url).text
    offered = re.search(r"<dt>The bundle offers</dt><dd>(.*?)</dd>", page)
    assert (
        offered
        and "rgb" not in offered.group(1)
        and "image + saliency classifier" in offered.group(1)
    )
    assert '<div data-applies="se_cbir cbir">' in page  # k and labels: neighbour aids only
    assert '<div data-applies="probabilities">' in page
    # "No aid" has no options: a saliency tick left in its row does not make it aided; the
    # saliency map alone is its own choice.
    rows = {
        "design": "per_case",
        "probe_share": "0",
        "conditions-0-aid": "unaided",
        "conditions-0-saliency": "y",
        "conditions-1-aid": "saliency_only",
        "conditions-2-aid": "se_cbir",
        "conditions-2-k": "6",
        "conditions-2-labelled": "y",
    }
    assert client.post(url, data=rows).status_code == 303
    with app.app_context():
        stored = db.session.get(Study, ref.id).conditions
    assert [(c["aid"], c["saliency"]) for c in stored] == [
        ("unaided", False),
        ("unaided", True),
        ("se_cbir", False),
    ]
    assert re.search(r'<option selected value="saliency_only">', client.get(url).text)
    # What the training run measured, by name: no raw key as a row heading.
    settings = client.get(f"/admin/studies/{ref.id}").text
    assert '<th scope="row">SE-CBIR (image + saliency features)</th>' in settings
    assert '<th scope="row">se_cbir</th>' not in settings


def test_a_new_study_page_copies_the_cases_of_a_study_one_runs(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, organiser)
    assert 'href="/admin/studies/new"' in client.get("/admin/").text
    page = client.get("/admin/studies/new").text
    assert 'href="/admin/studies/import"' in page and f'<option value="{study.id}"' in page
    made = client.post("/admin/studies/new", data={"source": study.id, "name": "Second look"})
    assert made.status_code == 303
    with app.app_context():
        copy = db.session.scalar(select(Study).where(Study.name == "Second look"))
        assert copy is not None and copy.status == StudyStatus.DRAFT
        assert made.location.endswith(f"/admin/studies/{copy.id}/design")
    assert client.post("/admin/studies/new", data={"source": 999, "name": "x"}).status_code == 400


def test_the_same_message_twice_is_shown_once_and_the_import_poll_flashes_nothing(
    app: Flask, organiser: UserRef, login: Callable
) -> None:
    from flask import flash, render_template_string

    with app.test_request_context():
        flash("This bundle was imported before.", "info")
        flash("This bundle was imported before.", "info")
        html = render_template_string(
            '{% from "_macros.html" import flash_messages %}{{ flash_messages() }}'
        )
    assert html.count("This bundle was imported before.") == 1
    with app.app_context():
        from app.models import ImportJob

        job = ImportJob(
            created_by_id=organiser.id, name="x", source="/", state="done", study_id=None
        )
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    client = app.test_client()
    login(client, organiser)
    poll = client.get(f"/admin/imports/{job_id}", headers={"X-Import-Poll": "1"})
    assert poll.status_code == 204
    shown = client.get(f"/admin/imports/{job_id}")
    assert shown.text.count("The import failed.") == 1


def test_the_preview_of_a_revised_answer_claims_no_selection(
    app: Flask, tmp_path: Path, organiser: UserRef, login: Callable
) -> None:
    bundle = make_bundle_v2(tmp_path / "bundle", cases=10, seed=5)
    ref = add_study(app, bundle, "Revised", status=StudyStatus.DRAFT, cases_per_reader=10)
    set_design(app, ref, "initial_revised", [Condition("se_cbir", 3).to_json()])
    client = app.test_client()
    login(client, organiser)
    revised = client.get(f"/survey/{ref.id}/preview/case/2").text
    assert "Your first answer is selected below" not in revised
    assert "none is, in this preview" in revised


def test_a_short_washout_shows_as_it_is(
    app: Flask, study: StudyRef, organiser: UserRef, reader: UserRef, login: Callable
) -> None:
    set_study(app, study, washout_hours=0.02)
    staff = app.test_client()
    login(staff, organiser)
    page = staff.get(f"/admin/studies/{study.id}").text
    assert 'value="0.02"' in page and "Now: 1 minute." in page and 'value="0.0"' not in page
    reading = app.test_client()
    login(reading, reader)
    welcome = reading.get(f"/survey/{study.id}/").text
    assert "It opens 1 minute after you finish Task 1" in welcome


def test_the_favicon_is_served(client: FlaskClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'rel="icon"' in client.get("/login").text


def test_a_finished_reader_of_a_closed_study_is_not_asked_to_continue(
    app: Flask, study: StudyRef, reader: UserRef, login: Callable, clock: FakeClock
) -> None:
    client = app.test_client()
    finish_task1(app, client, reader, study, login)
    clock.advance(hours=25)
    complete_task(client, study.id, 2)
    set_study(app, study, status=StudyStatus.CLOSED)
    welcome = client.get(f"/survey/{study.id}/").text
    assert "Continue the study" not in welcome and 'id="finished"' in welcome


def test_an_unfinished_reader_of_a_closed_study_is_told_it_is_closed(
    app: Flask, study: StudyRef, reader: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, reader)
    consent(client, study.id)
    set_study(app, study, status=StudyStatus.CLOSED)
    welcome = client.get(f"/survey/{study.id}/").text
    assert "Continue the study" not in welcome and 'id="closed"' in welcome


def test_the_progress_page_shows_each_readers_condition_order_and_next_opening(
    app: Flask,
    study: StudyRef,
    organiser: UserRef,
    reader: UserRef,
    login: Callable,
    clock: FakeClock,
) -> None:
    set_study(app, study, design="crossover", conditions=[c.to_json() for c in three_arm(6)])
    client = app.test_client()
    finish_task1(app, client, reader, study, login)
    staff = app.test_client()
    login(staff, organiser)
    page = staff.get(f"/admin/studies/{study.id}/readers").text
    order = re.search(r'<ol class="condition-order">(.*?)</ol>', page)
    assert order is not None
    listed = re.findall(r"<li>(.*?)</li>", order.group(1))
    assert sorted(listed) == sorted(["Unaided", "CBIR 6", "SE-CBIR 6"])
    # The clock stood still while Task 1 was answered: Task 2 opens a wash-out later.
    opens = clock.current + timedelta(hours=24)
    assert f"Task 2: opens {opens:%Y-%m-%d %H:%M} (in 1 day)" in page
