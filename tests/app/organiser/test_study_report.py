"""The design frozen when a study first opens (its hash on the settings page, design.json, a
change or a tampered row flagged) and the study report served by the dashboard."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import html5lib
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from app.analysis.fingerprint import canonical_json, fingerprint, sha256_text
from app.extensions import db
from app.models import DesignFreeze, Study, StudyStatus
from app.organiser import design_freeze
from app.organiser.design_freeze import freeze_state, seed_commitment
from tests.app.conftest import StudyRef, UserRef, add_study, join_study
from tests.app.reading import complete_task
from tests.app.world import CONSENT


def draft(app: Flask, bundle_cache: dict[int, Path]) -> StudyRef:
    """A draft study (10 cases per reader, no wash-out), owned by the organiser."""
    return add_study(app, bundle_cache[0], "Draft", cases_per_reader=10, washout_hours=0.0)


def freezes(app: Flask, study: StudyRef) -> list[DesignFreeze]:
    """The study's design_freeze rows."""
    with app.app_context():
        rows = db.session.scalars(select(DesignFreeze).where(DesignFreeze.study_id == study.id))
        return list(rows)


def test_the_design_freezes_when_the_study_opens_and_not_later(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    login: Callable,
    bundle_cache: dict[int, Path],
) -> None:
    study = draft(app, bundle_cache)
    login(client, organiser)
    settings = client.get(f"/admin/studies/{study.id}")
    assert 'id="design-not-frozen"' in settings.text and freezes(app, study) == []
    # A change while still a draft is no deviation: the design is frozen only at opening.
    with app.app_context():
        db.session.get_one(Study, study.id).design = "crossover"
        db.session.commit()
    assert client.post(f"/admin/studies/{study.id}/open").status_code == 302
    (frozen,) = freezes(app, study)
    assert frozen.sha256 == sha256_text(frozen.design)
    design = json.loads(frozen.design)
    assert design["design"] == "crossover" and len(design["conditions"]) == 2
    assert design["cases"]["pool"] == study.cases and design["cases"]["per_reader"] == 10
    # The seed is committed, salted, never in clear.
    with app.app_context():
        seed = db.session.get_one(Study, study.id).seed
    commitment = design["randomisation"]["study_seed_sha256"]
    assert commitment == seed_commitment(seed, frozen.seed_salt)
    assert str(seed) not in re.findall(r"\d+", frozen.design)
    assert commitment != sha256_text(str(seed))
    settings = client.get(f"/admin/studies/{study.id}")
    assert frozen.sha256 in settings.text and 'id="design-unchanged"' in settings.text
    # Closed, changed, opened again: the first freeze stays, and the change is flagged.
    client.post(f"/admin/studies/{study.id}/close")
    with app.app_context():
        db.session.get_one(Study, study.id).washout_hours = 72.0
        db.session.commit()
    client.post(f"/admin/studies/{study.id}/open")
    (again,) = freezes(app, study)
    assert (again.id, again.sha256, again.frozen_at) == (frozen.id, frozen.sha256, frozen.frozen_at)
    settings = client.get(f"/admin/studies/{study.id}")
    changed = re.search(r'id="design-changed">([^<]+)<', settings.text)
    assert changed is not None and "the wash-out" in changed.group(1)
    assert "the conditions" not in changed.group(1)


def test_a_double_clicked_open_freezes_once_and_answers_as_one_click(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    login: Callable,
    bundle_cache: dict[int, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second click's request looked before the first committed: it saw no freeze, made
    its own, and the database's one-freeze-per-study rule refused it. It answers as the first."""
    study = draft(app, bundle_cache)
    login(client, organiser)
    assert client.post(f"/admin/studies/{study.id}/open").status_code == 302
    (first,) = freezes(app, study)
    real = design_freeze.frozen_of
    looks = iter([None])  # the racing request's first look finds nothing
    monkeypatch.setattr(design_freeze, "frozen_of", lambda s: next(looks, real(s)))
    client.post(f"/admin/studies/{study.id}/close")
    second = client.post(f"/admin/studies/{study.id}/open")
    assert second.status_code == 302 and second.location.endswith(f"/admin/studies/{study.id}")
    assert [row.sha256 for row in freezes(app, study)] == [first.sha256]
    with app.app_context():
        assert db.session.get_one(Study, study.id).status == StudyStatus.OPEN


def test_a_tampered_frozen_design_is_flagged(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    login: Callable,
    bundle_cache: dict[int, Path],
) -> None:
    study = draft(app, bundle_cache)
    login(client, organiser)
    client.post(f"/admin/studies/{study.id}/open")
    assert 'id="design-tampered"' not in client.get(f"/admin/studies/{study.id}").text
    with app.app_context():
        row = db.session.scalars(select(DesignFreeze)).one()
        row.design = row.design.replace('"washout_hours":0.0', '"washout_hours":24.0')
        db.session.commit()
        state = freeze_state(db.session.get_one(Study, study.id))
        assert not state.intact and "the wash-out" in state.changed
    settings = client.get(f"/admin/studies/{study.id}")
    assert 'id="design-tampered"' in settings.text and 'id="design-changed"' in settings.text
    report = client.get(f"/dashboard/{study.id}/report.html")
    assert 'id="design-tampered"' in report.text and 'id="deviations"' in report.text


def test_design_json_holds_the_frozen_design_and_reveals_the_seed_only_when_closed(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    login: Callable,
    bundle_cache: dict[int, Path],
) -> None:
    study = draft(app, bundle_cache)
    login(client, organiser)
    before = client.get(f"/admin/studies/{study.id}/design.json")
    assert before.status_code == 200 and before.json["frozen"] is False
    client.post(f"/admin/studies/{study.id}/open")
    response = client.get(f"/admin/studies/{study.id}/design.json")
    assert response.headers["Content-Disposition"].endswith(f'study-{study.id}-design.json"')
    document = response.json
    assert document["frozen"] and document["hash_matches"] and document["changed_since"] == []
    assert fingerprint(document["design"]) == document["sha256"]
    assert "seed_reveal" not in document
    client.post(f"/admin/studies/{study.id}/close")
    reveal = client.get(f"/admin/studies/{study.id}/design.json").json["seed_reveal"]
    commitment = document["design"]["randomisation"]["study_seed_sha256"]
    assert seed_commitment(reveal["seed"], reveal["salt"]) == commitment


def test_flask_study_open_freezes_the_design(
    app: Flask, runner: FlaskCliRunner, bundle_cache: dict[int, Path]
) -> None:
    study = draft(app, bundle_cache)
    opened = runner.invoke(args=["study", "open", str(study.id)])
    assert opened.exit_code == 0, opened.output
    (frozen,) = freezes(app, study)
    assert f"SHA-256 {frozen.sha256}" in opened.output
    with app.app_context():
        assert db.session.get_one(Study, study.id).status == StudyStatus.OPEN


def test_the_dashboard_serves_the_study_report(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    login: Callable,
    make_user: Callable[..., UserRef],
    bundle_cache: dict[int, Path],
) -> None:
    study = draft(app, bundle_cache)
    login(client, organiser)
    client.post(f"/admin/studies/{study.id}/open")
    (frozen,) = freezes(app, study)
    for n in range(3):
        reader = make_user(f"reader{n}@example.org")
        join_study(app, reader, study)
        reader_client = app.test_client()
        login(reader_client, reader)
        assert reader_client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 303
        for task in (1, 2):
            complete_task(reader_client, study.id, task)
    invited = make_user("never@example.org")
    join_study(app, invited, study)
    response = client.get(f"/dashboard/{study.id}/report.html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.text
    html5lib.HTMLParser(strict=True).parse(html)
    for section in ("flow", "methods", "results", "reliance", "timing", "planning"):
        assert f'id="{section}"' in html, section
    assert frozen.sha256 in html and "The design frozen when the study first opened" in html
    assert "Sequential replay reader study of 2 conditions" in html and "(no wash-out)" in html
    # The flow: 4 invited, 3 enrolled and completed, 3 analysed; the pool and what was read.
    assert "Readers invited: 4" in html and "Enrolled (consented): 3" in html
    assert "Completed every session: 3" in html and "Readers analysed: 3" in html
    assert f"Cases in the pool: {study.cases}" in html
    # Self-contained, and its one stylesheet allowed by hash, not by 'unsafe-inline'.
    assert not re.search(r'\ssrc="', html)
    assert set(re.findall(r'href="([^"]+)"', html)) == {
        "https://doi.org/10.1080/03610919508813243",
        "https://doi.org/10.1002/sim.2532",
        "https://cran.r-project.org/package=MRMCaov",
        "https://doi.org/10.1117/12.2549075",
        "https://doi.org/10.1016/j.acra.2010.09.007",
    }
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    policy = response.headers["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}'" in policy and "unsafe-inline" not in policy
    assert "default-src 'none'" in policy
    assert 'id="study-report"' in client.get(f"/dashboard/{study.id}/").text


def test_a_study_opened_before_freezes_gets_a_report_without_a_fingerprint(
    app: Flask, client: FlaskClient, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    login(client, organiser)
    settings = client.get(f"/admin/studies/{study.id}")
    assert "opened before designs were frozen" in settings.text
    html = client.get(f"/dashboard/{study.id}/report.html").text
    assert "it has no registered fingerprint" in html and 'id="design-sha256"' not in html
    html5lib.HTMLParser(strict=True).parse(html)


def test_rewording_the_names_is_no_change_of_the_design(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    login: Callable,
    bundle_cache: dict[int, Path],
) -> None:
    # A later version of the platform may name designs and conditions otherwise: the names
    # frozen then are kept, and the design it ran is not flagged as changed.
    study = draft(app, bundle_cache)
    login(client, organiser)
    client.post(f"/admin/studies/{study.id}/open")
    with app.app_context():
        row = db.session.scalars(select(DesignFreeze)).one()
        design = json.loads(row.design)
        design["design_name"] = "An older name"
        design["conditions"][1]["label"] = "Retrieved images"
        row.design = canonical_json(design)
        row.sha256 = sha256_text(row.design)
        db.session.commit()
        state = freeze_state(db.session.get_one(Study, study.id))
        assert state.intact and state.changed == []
        db.session.get_one(Study, study.id).probe_share = 0.2
        assert freeze_state(db.session.get_one(Study, study.id)).changed == [
            "the faulty-aid probes"
        ]
