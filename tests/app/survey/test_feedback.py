"""Feedback at the end, when the organiser allows it: a finished reader's own score per
condition (probes left out) and which of their cases were misleading-aid probes."""

import re
from collections.abc import Callable
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Answer, Assignment, Enrolment, Role, Study, StudyClass, StudyStatus
from app.survey.conditions import Condition
from app.survey.feedback import reader_words
from tests.app.conftest import StudyRef, add_study, add_user, join_study
from tests.app.reading import SE6, UNAIDED, answer_case, consent, set_design

CODES = ("nv", "mel", "bkl")


@pytest.fixture
def with_feedback(app: Flask, bundle_cache: dict) -> StudyRef:
    """The thesis's design, 8 cases per reader, probes in half the aided readings, feedback."""
    ref = add_study(
        app,
        bundle_cache[0],
        "Feedback",
        status=StudyStatus.OPEN,
        cases_per_reader=8,
        washout_hours=0.0,
        probe_share=0.5,
        feedback=True,
        practice_cases=2,
    )
    set_design(app, ref, "sequential", [UNAIDED, SE6])
    return ref


def test_a_finished_reader_sees_their_scores_and_probes(
    app: Flask, client: FlaskClient, with_feedback: StudyRef, login: Callable
) -> None:
    reader = add_user(app, "feedback@example.org", Role.READER)
    join_study(app, reader, with_feedback)
    login(client, reader)
    consent(client, with_feedback.id)
    for task, count in ((0, 2), (1, 8), (2, 8)):
        for number in range(1, count + 1):
            answer_case(client, with_feedback.id, task, number, CODES[number % 3])
    url = f"/survey/{with_feedback.id}/task/2/done"
    html = client.get(url).get_data(as_text=True)
    with app.app_context():
        rows = db.session.execute(
            select(Assignment, Answer)
            .join(Answer, Answer.assignment_id == Assignment.id)
            .join(Enrolment, Enrolment.id == Assignment.enrolment_id)
            .where(Enrolment.user_id == reader.id, Assignment.session >= 1)
            .order_by(Assignment.session, Assignment.position)
        ).all()
        names = {
            c.code: c.name
            for c in db.session.scalars(
                select(StudyClass).where(StudyClass.study_id == with_feedback.id)
            )
        }
        expected = {}
        for condition in (0, 1):
            kept = [(a, b) for a, b in rows if a.condition == condition and not a.probe]
            right = sum(b.diagnosis == a.case.truth for a, b in kept)
            expected[condition] = (right, len(kept))
        probes = [(a, b) for a, b in rows if a.probe]
        pointed = [names[b.shown["probe_class"]] for _, b in probes]
    assert probes, "half the aided readings are probes"
    assert '<h2 id="feedback-title">Your results</h2>' in html
    table = dict(re.findall(r'<tr><th scope="row">([^<]+)</th><td>(\d+ of \d+)</td>', html))
    assert table == {
        "Without the AI&#39;s help": "{} of {}".format(*expected[0]),
        "With 6 similar images (SE-CBIR)": "{} of {}".format(*expected[1]),
    }
    listed = [unescape(n) for n in re.findall(r"the help pointed to ([^<]+?) on purpose", html)]
    assert listed == pointed
    # Off (the default): nothing of it.
    with app.app_context():
        db.session.get_one(Study, with_feedback.id).feedback = False
        db.session.commit()
    assert "Your results" not in client.get(url).get_data(as_text=True)


def test_conditions_are_named_by_what_the_reader_saw() -> None:
    assert reader_words(Condition()) == "Without the AI's help"
    assert reader_words(Condition(context=True)) == (
        "Without the AI's help, with the patient's age, sex and body site"
    )
    assert reader_words(Condition("cbir", 3, saliency=True)) == (
        "With 3 similar images (CBIR) and its saliency map"
    )
    assert reader_words(Condition(saliency=True)) == "With the AI's saliency map"
    assert reader_words(Condition("probabilities")) == (
        "With the AI's class probabilities (image and saliency)"
    )
    assert reader_words(Condition("probabilities", classifier="rgb")) == (
        "With the AI's class probabilities (image only)"
    )
    assert reader_words(Condition("se_cbir", 6, labelled=False)) == (
        "With 6 similar images (SE-CBIR) without their classes"
    )
