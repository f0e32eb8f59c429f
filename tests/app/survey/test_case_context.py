"""Case context: the patient's age, sex and body site from the bundle's `context` extension,
shown or hidden per condition as the organiser chooses, recorded with each answer, exported."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Answer, Assignment, Case, Role, Study, StudyStatus
from app.organiser.exports import RESPONSE_COLUMNS, response_rows
from app.survey.conditions import Condition
from tests.app.bundle_factory import make_bundle_v2
from tests.app.conftest import StudyRef, UserRef, add_study, add_user, join_study
from tests.app.reading import answer_case, assignments_of, consent, set_design

CONDITIONS = [Condition(context=True), Condition("se_cbir", 6)]


@pytest.fixture
def with_context(app: Flask, tmp_path: Path) -> StudyRef:
    """A per-case study on a bundle with the context extension: unaided with the patient's
    context, SE-CBIR without it."""
    bundle = make_bundle_v2(tmp_path / "bundle", cases=8, aids=("se_cbir",), context=True)
    ref = add_study(
        app, bundle, "Context", status=StudyStatus.OPEN, cases_per_reader=8, washout_hours=0
    )
    set_design(app, ref, "per_case", [c.to_json() for c in CONDITIONS])
    return ref


def patient_rows(html: str) -> dict[str, str]:
    """The patient context a case page shows, label -> value ({} when none)."""
    section = re.search(r'<section class="patient".*?</section>', html, re.S)
    if section is None:
        return {}
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", section.group(0)))


def test_the_context_is_shown_in_its_condition_only_and_recorded(
    app: Flask, client: FlaskClient, with_context: StudyRef, login: Callable
) -> None:
    reader = add_user(app, "ctx@example.org", Role.READER)
    join_study(app, reader, with_context)
    login(client, reader)
    consent(client, with_context.id)
    plan = assignments_of(app, reader)
    pages = [
        (case_id, condition, answer_case(client, with_context.id, 1, number))
        for number, (_, _, case_id, condition, _) in enumerate(plan, start=1)
    ]
    assert {condition for _, condition, _ in pages} == {0, 1}
    with app.app_context():
        for case_id, condition, html in pages:
            case = db.session.get_one(Case, case_id)
            shown = patient_rows(html)
            if condition == 1:
                assert shown == {}
                continue
            age, sex, site = case.context["age"], case.context["sex"], case.context["site"]
            assert shown["Age"] == ("not recorded" if age is None else f"{age} years")
            assert shown["Sex"] == {"female": "Female", "male": "Male", None: "not recorded"}[sex]
            assert shown["Body site"] == (site.capitalize() if site else "not recorded")
        answers = db.session.scalars(select(Answer).join(Assignment)).all()
        assert len(answers) == 8
        for stored in answers:
            case = stored.assignment.case
            if stored.assignment.condition == 0:
                assert stored.context == case.context
                assert stored.shown["condition"] == "unaided_context"
            else:
                assert stored.context is None
        rows = response_rows(db.session.get_one(Study, with_context.id))
    assert RESPONSE_COLUMNS[-4:] == ("context_shown", "context_age", "context_sex", "context_site")
    for row in rows:
        if row["condition"] == "unaided_context":
            assert row["context_shown"] == 1
            assert row["context_sex"] in ("female", "male", "")
        else:
            assert (row["context_shown"], row["context_age"], row["context_site"]) == (0, "", "")


def test_the_design_page_offers_context_only_where_the_bundle_has_it(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    with_context: StudyRef,
    study: StudyRef,
    login: Callable,
) -> None:
    login(client, organiser)
    page = client.get(f"/admin/studies/{with_context.id}/design").get_data(as_text=True)
    assert "each patient&#39;s age, sex and body site" in page
    box = re.search(r'<input[^>]*name="conditions-0-context"[^>]*>', page)
    assert box is not None and "checked" in box.group(0), box
    form = {
        "design": "sequential",
        "conditions-0-aid": "unaided",
        "conditions-1-aid": "se_cbir",
        "conditions-1-k": "6",
        "conditions-1-labelled": "y",
        "conditions-1-context": "y",
        "probe_share": "0",
    }
    response = client.post(f"/admin/studies/{with_context.id}/design", data=form)
    assert response.status_code == 303
    with app.app_context():
        listed = db.session.get_one(Study, with_context.id).conditions
        assert [c["context"] for c in listed] == [False, True]
    # The plain bundle (format 1) has no context: the option is not offered, and refused.
    plain = client.get(f"/admin/studies/{study.id}/design").get_data(as_text=True)
    assert "conditions-0-context" not in plain
    refused = client.post(f"/admin/studies/{study.id}/design", data=form)
    assert refused.status_code == 400
    assert "The bundle carries no age, sex or body site of its cases." in refused.get_data(
        as_text=True
    )


def test_a_condition_with_context_has_its_own_key_and_words() -> None:
    condition = Condition("se_cbir", 6, context=True)
    assert condition.key == "se_cbir_context"
    assert condition.label.endswith("+ age, sex and body site")
    assert Condition().key == "unaided"
