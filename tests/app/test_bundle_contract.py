"""The contract between training and the app: the tiny pipeline's own bundle goes through the
app's importer and is served to a reader, on SQLite and PostgreSQL.

The pipeline run is the session's shared tiny run (tests/conftest.py), made once.
"""

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.bundle import import_bundle
from app.extensions import db
from app.models import Answer, Case, Role, Study, StudyStatus
from tests.app.conftest import StudyRef, add_study, add_user, join_study
from tests.conftest import TinyRun

pytestmark = pytest.mark.training


def token_of(html: str) -> str:
    """The opaque case token in a case page's form."""
    match = re.search(r'name="token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="token"', html)
    assert match, "no token field on the page"
    return match.group(1) or match.group(2)


def read_through(app: Flask, study: StudyRef, login: Callable, cases: int) -> list[str]:
    """A reader answers every case of both tasks; the HTML of each Task 2 case page."""
    reader = add_user(app, "contract.reader@example.org", Role.READER)
    join_study(app, reader, study)
    client: FlaskClient = app.test_client()
    login(client, reader)
    assert client.post(f"/survey/{study.id}/", data={"consent": "y"}).status_code == 303
    with app.app_context():
        codes = [c["code"] for c in db.session.get(Study, study.id).manifest["classes"]]
    pages = []
    for task in (1, 2):
        for number in range(1, cases + 1):
            url = f"/survey/{study.id}/task/{task}/case/{number}"
            page = client.get(url)
            assert page.status_code == 200, (task, number, page.status_code)
            html = page.get_data(as_text=True)
            if task == 2:
                pages.append(html)
            answer = {"diagnosis": codes[-1], "confidence": 2, "token": token_of(html)}
            assert client.post(url, data=answer).status_code == 303
    return pages


def test_the_pipelines_bundle_imports_and_is_served(
    app: Flask, tiny_run: TinyRun, tmp_path: Path, login: Callable
) -> None:
    bundle = Path(shutil.copytree(tiny_run.study, tmp_path / "study"))
    queries = json.loads((bundle / "queries.json").read_text())
    with app.app_context():
        study, created = import_bundle(bundle, "Tiny run", app.config["STUDY_IMAGES"])
        assert created and len(study.cases) == len(queries)
        for case, query in zip(study.cases, queries, strict=True):
            assert (case.case_key, case.truth) == (query["case_key"], query["truth"])
            assert [n.image_id for n in case.neighbours] == [
                n["image_id"] for n in query["neighbours"]
            ]
        again, created_again = import_bundle(bundle, "Again", app.config["STUDY_IMAGES"])
        assert again.id == study.id and not created_again
    cases = min(3, len(queries))
    ref = add_study(
        app,
        bundle,
        "Tiny run",
        status=StudyStatus.OPEN,
        cases_per_reader=cases,
        washout_hours=0.0,
    )
    pages = read_through(app, ref, login, cases)
    with app.app_context():
        stored = db.session.scalars(select(Answer)).all()
        assert len(stored) == 2 * cases
        shown = {a.assignment.case_id: a.neighbours_shown for a in stored if a.rotation == 180}
        for case_id, ids in shown.items():
            case = db.session.get(Case, case_id)
            assert ids == [n.image_id for n in case.neighbours] and len(ids) == 6
    for html in pages:
        assert len(re.findall(r'<figure class="tile cls-[\w-]+">', html)) == 6
        assert not any(q["image_id"] in html or q["lesion_id"] in html for q in queries)
