"""Format-2 bundles in the app: the study's own taxonomy, scale and aids are imported and the
survey serves them; a bundle that breaks a rule is refused whole (SQLite and PostgreSQL)."""

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.bundle import BundleError, import_bundle, served_name
from app.extensions import db
from app.models import Answer, Case, Neighbour, Role, Study, StudyClass, StudyStatus
from studybundle.images import content_name
from tests.app.bundle_factory import (
    FOUR_LEVELS,
    ISIC2019,
    encode,
    make_bundle_v2,
    picture,
)
from tests.app.conftest import ORGANISER_EMAIL, UserRef, add_study, add_user, join_study
from tests.app.world import CONSENT


@pytest.fixture(scope="module")
def isic_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight classes, four confidence levels, nine neighbours per aid, Task 2 shows five."""
    folder = tmp_path_factory.mktemp("isic") / "bundle"
    return make_bundle_v2(
        folder, cases=8, classes=ISIC2019, likert=FOUR_LEVELS, max_neighbours=9, shown=5
    )


def token_of(html: str) -> str:
    """The opaque case token in a case page's form."""
    match = re.search(r'<input[^>]*name="token"[^>]*>', html)
    assert match
    value = re.search(r'value="([^"]+)"', match.group(0))
    assert value
    return value.group(1)


def test_a_format2_bundle_is_imported_with_its_taxonomy_scale_and_aids(
    app: Flask, isic_bundle: Path
) -> None:
    queries = json.loads((isic_bundle / "queries.json").read_text())
    with app.app_context():
        study, created = import_bundle(isic_bundle, "ISIC", app.config["STUDY_IMAGES"])
        assert created
        assert [(c.code, c.malignant) for c in study.classes] == [
            (c.code, c.malignant) for c in ISIC2019
        ]
        assert study.classes[7].name == "Squamous cell carcinoma"
        assert study.likert == list(FOUR_LEVELS) and study.neighbours_shown == 5
        for case, query in zip(study.cases, queries, strict=True):
            aids = query["aids"]
            for aid in ("se_cbir", "cbir"):
                stored = case.neighbours_of(aid, 50)
                assert [n.image_id for n in stored] == [
                    n["image_id"] for n in aids[aid]["neighbours"]
                ]
                assert case.votes[aid] == aids[aid]["majority_vote"]
            assert case.majority_vote == aids["se_cbir"]["majority_vote"]["5"]
            assert case.probabilities == aids["probabilities"]
            overlay = aids["saliency"]
            assert case.saliency == served_name(overlay["image"].removeprefix("images/"))
            assert case.saliency_rotated == served_name(
                overlay["image_rotated"].removeprefix("images/")
            )
        folder = Path(study.image_folder)
        assert case.saliency is not None and (folder / case.saliency).is_file()
        assert db.session.scalar(select(func.count(Neighbour.id))) == 8 * 2 * 9


def answer_page(client: FlaskClient, url: str, **data: Any) -> Any:
    """Open a case page and post `data` with its token."""
    page = client.get(url)
    assert page.status_code == 200, url
    return page, client.post(url, data={**data, "token": token_of(page.get_data(as_text=True))})


def test_the_survey_serves_the_studys_own_classes_scale_and_k(
    app: Flask, isic_bundle: Path, login: Callable
) -> None:
    ref = add_study(
        app, isic_bundle, "ISIC", status=StudyStatus.OPEN, cases_per_reader=2, washout_hours=0
    )
    reader: UserRef = add_user(app, "isic.reader@example.org", Role.READER)
    join_study(app, reader, ref)
    client = app.test_client()
    login(client, reader)
    welcome = client.get(f"/survey/{ref.id}/").get_data(as_text=True)
    assert "The 8 classes and their definitions" in welcome and "rather unsure" in welcome
    assert client.post(f"/survey/{ref.id}/", data=CONSENT).status_code == 303
    url = f"/survey/{ref.id}/task/1/case/1"
    page, refused = answer_page(client, url, diagnosis="mel", confidence=2)
    html = page.get_data(as_text=True)
    assert re.findall(r'name="diagnosis" value="([^"]+)"', html) == [c.code for c in ISIC2019]
    assert re.findall(r'name="confidence" value="(\d)"', html) == ["1", "2", "3", "4"]
    assert "keys 1&ndash;8" in html and "Squamous cell carcinoma" in html
    assert refused.status_code == 400  # HAM10000's "mel" is not a class of this study
    _, refused = answer_page(client, url, diagnosis="SCC", confidence=5)
    assert refused.status_code == 400  # the scale has four levels
    for number in (1, 2):
        url = f"/survey/{ref.id}/task/1/case/{number}"
        assert answer_page(client, url, diagnosis="SCC", confidence=4)[1].status_code == 303
    url = f"/survey/{ref.id}/task/2/case/1"
    page, saved = answer_page(client, url, diagnosis="AK", confidence=1)
    assert saved.status_code == 303
    html = page.get_data(as_text=True)
    tiles = re.findall(r'<figure class="tile cls-([\w-]+)">', html)
    with app.app_context():
        answer = db.session.scalars(select(Answer).where(Answer.rotation == 180)).one()
        case = db.session.get(Case, answer.assignment.case_id)
        shown = case.neighbours_of("se_cbir", 5)
        assert answer.neighbours_shown == [n.image_id for n in shown]
        assert (answer.diagnosis, answer.confidence) == ("AK", 1)
        assert case.saliency is not None and case.saliency.removesuffix(".jpg") not in html
        cbir = {n.image.removesuffix(".jpg") for n in case.neighbours_of("cbir", 9)}
    assert tiles == [n.truth for n in shown]  # SE-CBIR's first five, as the study's k says
    assert not any(name in html for name in cbir - {n.image[:-4] for n in shown})
    assert case.image_id not in html and case.lesion_id not in html


def replace_overlay(bundle: Path, queries: list) -> None:
    """Give query 3 a saliency overlay of half the query image's size."""
    small = picture(77, size=12)
    upright, turned = encode(small), encode(small.rotate(180))
    for data in (upright, turned):
        (bundle / "images" / content_name(data)).write_bytes(data)
    queries[3]["aids"]["saliency"] = {
        "image": f"images/{content_name(upright)}",
        "image_rotated": f"images/{content_name(turned)}",
    }


BROKEN: dict[str, tuple[Callable[[Path, list], None], str]] = {
    "a class the taxonomy does not list": (
        lambda _, q: q[2]["aids"]["se_cbir"]["neighbours"][0].update(truth="nv"),
        "queries.json[2].aids.se_cbir.neighbours[0].truth is 'nv', not a class of the study",
    ),
    "an aid list shorter than the study asks for": (
        lambda _, q: q[6]["aids"]["cbir"]["neighbours"].pop(),
        "queries.json[6].aids.cbir.neighbours must have exactly 9 neighbours, not 8",
    ),
    "probabilities that do not sum to 1": (
        lambda _, q: q[1]["aids"]["probabilities"]["rgb_saliency"].__setitem__(0, 0.9),
        "queries.json[1].aids.probabilities.rgb_saliency sums to",
    ),
    "an overlay of the wrong size": (
        replace_overlay,
        "queries.json[3].aids.saliency.image is 12x12, not the query image's 24x24",
    ),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_format2_bundle_is_refused_whole(
    app: Flask, isic_bundle: Path, tmp_path: Path, kind: str
) -> None:
    bundle = Path(shutil.copytree(isic_bundle, tmp_path / "bundle"))
    breaker, message = BROKEN[kind]
    queries = json.loads((bundle / "queries.json").read_text())
    breaker(bundle, queries)
    (bundle / "queries.json").write_text(json.dumps(queries))
    with app.app_context():
        with pytest.raises(BundleError) as caught:
            import_bundle(bundle, "Broken", app.config["STUDY_IMAGES"])
        assert message in str(caught.value)
        for table in (Study, StudyClass, Case, Neighbour):
            assert db.session.scalar(select(func.count()).select_from(table)) == 0
    images = Path(app.config["STUDY_IMAGES"])
    assert not images.exists() or not any(images.iterdir())


def test_a_bundle_without_se_cbir_is_refused_by_the_survey(app: Flask, tmp_path: Path) -> None:
    bundle = make_bundle_v2(tmp_path / "cbir", cases=3, aids=("cbir", "probabilities"))
    with app.app_context():
        with pytest.raises(BundleError, match="carries no se_cbir aid"):
            import_bundle(bundle, "CBIR only", app.config["STUDY_IMAGES"])
        assert db.session.scalar(select(func.count(Study.id))) == 0


def test_organisers_see_the_taxonomy_and_what_the_aids_scored(
    app: Flask, isic_bundle: Path, login: Callable
) -> None:
    organiser = add_user(app, ORGANISER_EMAIL, Role.ORGANISER)
    ref = add_study(app, isic_bundle, "ISIC")  # owned by that organiser
    client = app.test_client()
    login(client, organiser)
    html = client.get(f"/admin/studies/{ref.id}").get_data(as_text=True)
    assert "8: MEL (malignant), NV, BCC (malignant)" in html
    assert "4 levels: unsure · rather unsure · rather sure · sure" in html
    assert "Task 2: SE-CBIR similar images, 5 labelled" in html
    scores = html[html.index('id="aid-scores"') :]
    assert '<th scope="col">P@6</th>' in scores and "<td>0.500</td>" in scores


def test_organisers_see_the_figures_the_run_record_could_not_give(
    app: Flask, isic_bundle: Path, tmp_path: Path, login: Callable
) -> None:
    bundle = Path(shutil.copytree(isic_bundle, tmp_path / "bundle"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["provenance"]["metrics"]["classifiers"] = {"rgb": {"accuracy": "high"}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    organiser = add_user(app, ORGANISER_EMAIL, Role.ORGANISER)
    ref = add_study(app, bundle, "ISIC, a hand-edited record")
    client = app.test_client()
    login(client, organiser)
    html = client.get(f"/admin/studies/{ref.id}").get_data(as_text=True)
    scores = html[html.index('id="aid-scores"') :]
    assert "<td>0.500</td>" in scores  # what reads is still shown
    problems = scores[scores.index('id="metrics-problems"') :]
    assert "manifest.json provenance.metrics.classifiers.rgb.accuracy is" in problems
    assert "not a finite number" in problems
