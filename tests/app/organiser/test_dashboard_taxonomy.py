"""A study with its own taxonomy (format 2): eight ISIC 2019-like classes through the dashboard.

Two readers answer every case of an 8-class study (upper-case codes, SCC added, malignancy
flagged by the bundle) in both tasks through the survey's pages; the organiser's dashboard,
its heat maps and its R script must use the study's classes, not HAM10000's.
"""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.models import Role, StudyStatus
from tests.app.bundle_factory import ISIC2019, make_bundle_v2
from tests.app.conftest import FakeClock, StudyRef, UserRef, add_study, add_user, join_study
from tests.app.reading import consent
from tests.app.results import case_at, heat_counts, page, submit

CODES = [info.code for info in ISIC2019]
CASES = 16


@pytest.fixture
def isic_study(app: Flask, tmp_path: Path, organiser: UserRef) -> StudyRef:
    """An open 8-class study, 16 cases per reader in both tasks, no wash-out."""
    bundle = make_bundle_v2(tmp_path / "bundle", cases=CASES, seed=3, classes=ISIC2019)
    return add_study(
        app, bundle, "ISIC 2019", status=StudyStatus.OPEN, cases_per_reader=CASES, washout_hours=0
    )


def read_everything(
    app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef, skill: tuple[int, int]
) -> list[tuple[int, str, str]]:
    """`reader` answers both tasks, right on cases whose number mod 4 < skill[task - 1]."""
    client.post("/logout")
    assert client.post("/login", data={"email": reader.email, "password": reader.password})
    consent(client, study.id)
    given = []
    for task in (1, 2):
        for number in range(1, CASES + 1):
            truth = case_at(app, reader, study, task, number).truth
            wrong = CODES[(CODES.index(truth) + 1) % len(CODES)]
            diagnosis = truth if number % 4 < skill[task - 1] else wrong
            submit(client, study, task, number, diagnosis)
            given.append((task, truth, diagnosis))
    client.post("/logout")
    return given


def test_an_eight_class_study_shows_its_own_classes_and_endpoints(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    isic_study: StudyRef,
    clock: FakeClock,
    login: Callable,
) -> None:
    answers = []
    for index, skill in enumerate(((2, 3), (1, 3))):
        reader = add_user(app, f"isic{index}@example.org", Role.READER)
        join_study(app, reader, isic_study)
        answers += read_everything(app, client, isic_study, reader, skill)

    login(client, organiser)
    html = page(client, isic_study)
    assert f"{len(answers)} answers" in html
    for task in (1, 2):
        expected = [[0] * len(CODES) for _ in CODES]
        for t, truth, diagnosis in answers:
            if t == task:
                expected[CODES.index(truth)][CODES.index(diagnosis)] += 1
        assert heat_counts(html, f"confusion-{task}") == expected
    # Every class has its endpoint: a table of its own, or a line that says why not.
    endpoints = re.search(r'id="every-endpoint">(.*?)</section>', html, re.S).group(1)
    for code in CODES:  # SCC included, as the study spells it
        assert f"Sensitivity for {code}" in endpoints
    # The bundle's MEL is melanoma; AK, BCC, MEL and SCC are flagged malignant.
    headline = re.search(r'<ul class="headline">(.*?)</ul>', html, re.S).group(1)
    for endpoint in ("melanoma_sensitivity", "malignant_specificity", "balanced_accuracy"):
        assert f'data-endpoint="{endpoint}"' in headline
    assert "Proportion correct: 75.0% with SE-CBIR 6 against 37.5% with Unaided" in headline

    svg = client.get(f"/dashboard/{isic_study.id}/confusion-task2.svg")
    assert svg.status_code == 200 and ">SCC<" in svg.get_data(as_text=True)
    script = client.get(f"/dashboard/{isic_study.id}/export/mrmcaov-r").get_data(as_text=True)
    assert 'real$truth_class == "MEL"' in script
    assert 'malignant <- c("AK", "BCC", "MEL", "SCC")' in script
