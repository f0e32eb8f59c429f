"""The contract between training and the app: bundles made by the tiny pipeline go through the
app's importer and are served to a reader, on SQLite and PostgreSQL.

- the run's own bundle (format 2, every aid);
- a format-1 bundle written by the pipeline's writer from the same run's query pool;
- an 8-class bundle (ISIC 2019's codes, SCC added) with 9 neighbours per aid, made here from
  the run's bundle.

The run is the session's shared tiny run (tests/conftest.py), made once for the whole suite.
"""

import json
import re
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.bundle import import_bundle
from app.extensions import db
from app.models import Answer, Case, Role, Study, StudyStatus
from studybundle import read, validate_bundle
from studybundle.vote import majority_vote
from tests.app.bundle_factory import ISIC2019
from tests.app.conftest import StudyRef, add_user, join_study
from tests.app.world import CONSENT
from tests.conftest import TinyRun

pytestmark = pytest.mark.training

HAM_TO_ISIC = {
    "akiec": "AK",
    "bcc": "BCC",
    "bkl": "BKL",
    "df": "DF",
    "mel": "MEL",
    "nv": "NV",
    "vasc": "VASC",
}


def token_of(html: str) -> str:
    """The opaque case token in a case page's form."""
    match = re.search(r'<input[^>]*name="token"[^>]*>', html)
    assert match, "no token field on the page"
    value = re.search(r'value="([^"]+)"', match.group(0))
    assert value
    return value.group(1)


def read_through(app: Flask, study: StudyRef, login: Callable, cases: int) -> list[str]:
    """A reader answers every case of both tasks (the study's last class, its top level);
    the HTML of each Task 2 case page."""
    reader = add_user(app, f"reader{study.id}@example.org", Role.READER)
    join_study(app, reader, study)
    client: FlaskClient = app.test_client()
    login(client, reader)
    assert client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 303
    with app.app_context():
        record = db.session.get(Study, study.id)
        code, level = record.classes[-1].code, len(record.likert)
    pages = []
    for task in (1, 2):
        for number in range(1, cases + 1):
            url = f"/survey/{study.id}/task/{task}/case/{number}"
            page = client.get(url)
            assert page.status_code == 200, (task, number, page.status_code)
            html = page.get_data(as_text=True)
            if task == 2:
                pages.append(html)
            answer = {"diagnosis": code, "confidence": level, "token": token_of(html)}
            assert client.post(url, data=answer).status_code == 303
    return pages


def import_and_serve(app: Flask, bundle: Path, login: Callable) -> None:
    """Import `bundle` (a second time: a no-op), check every stored aid against it, and let a
    reader answer three cases in both tasks; Task 2 shows the study's k SE-CBIR neighbours."""
    valid = validate_bundle(bundle)
    manifest, queries = valid.manifest, valid.queries
    with app.app_context():
        study, created = import_bundle(bundle, "Tiny run", app.config["STUDY_IMAGES"])
        assert created and len(study.cases) == len(queries)
        assert [c.code for c in study.classes] == [c["code"] for c in manifest["classes"]]
        for case, query in zip(study.cases, queries, strict=True):
            assert (case.case_key, case.truth) == (query["case_key"], query["truth"])
            for aid, items in read.neighbour_lists(manifest, query).items():
                stored = case.neighbours_of(aid, read.max_neighbours(manifest))
                assert [(n.image_id, n.truth) for n in stored] == [
                    (n["image_id"], n["truth"]) for n in items
                ]
            assert case.probabilities == read.probabilities(manifest, query)
        again, created_again = import_bundle(bundle, "Again", app.config["STUDY_IMAGES"])
        assert again.id == study.id and not created_again
        study_id, k = study.id, study.neighbours_shown
    ref = StudyRef(study_id, "Tiny run", valid.digest, "", len(queries))
    with app.app_context():
        record = db.session.get(Study, study_id)
        record.status, record.cases_per_reader, record.washout_hours = StudyStatus.OPEN, 3, 0.0
        db.session.commit()
    pages = read_through(app, ref, login, min(3, len(queries)))
    with app.app_context():
        stored = db.session.scalars(select(Answer)).all()
        assert len(stored) == 2 * min(3, len(queries))
        for answer in stored:
            if answer.rotation == 180:
                case = db.session.get(Case, answer.assignment.case_id)
                assert answer.neighbours_shown == [
                    n.image_id for n in case.neighbours_of("se_cbir", k)
                ]
    for html in pages:
        assert len(re.findall(r'<figure class="tile cls-[\w-]+">', html)) == k
        assert not any(q["image_id"] in html or q["lesion_id"] in html for q in queries)


def test_the_pipelines_format2_bundle_is_imported_and_served(
    app: Flask, tiny_run: TinyRun, tmp_path: Path, login: Callable
) -> None:
    bundle = Path(shutil.copytree(tiny_run.study, tmp_path / "study"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    assert manifest["aids"] == ["se_cbir", "cbir", "probabilities", "saliency"]
    assert manifest["max_neighbours"] == 9 and manifest["neighbours"] == 6
    assert set(manifest["provenance"]["metrics"]["retrieval"]) >= {"cbir", "se_cbir"}
    import_and_serve(app, bundle, login)


def test_a_format1_bundle_from_the_pipelines_writer_is_imported_and_served(
    app: Flask, tiny_run: TinyRun, tmp_path: Path, login: Callable
) -> None:
    from training import bundle as writer

    pool = writer.pool_from_json(json.loads((tiny_run.out / "query_pool.json").read_text()))
    sources = {p.stem: p for p in tiny_run.data.rglob("*.jpg")}
    folder = writer.write_bundle(
        tmp_path / "v1", pool, sources, b"s" * 32, 64, {"run": "tiny"}, version=1
    )
    assert json.loads((folder / "manifest.json").read_text())["format_version"] == 1
    import_and_serve(app, folder, login)


def regrouped(
    by_class: dict[str, list[dict[str, Any]]], order: list[str], relabel: Callable[[str, str], str]
) -> dict[str, list[dict[str, Any]]]:
    """An aid's class_neighbours under the new labels: each image in its new class's list,
    similarity order kept, ranked again."""
    out: dict[str, list[dict[str, Any]]] = {code: [] for code in order}
    for items in by_class.values():
        for item in items:
            item["truth"] = relabel(item["truth"], item["image_id"])
            out[item["truth"]].append(item)
    for items in out.values():
        items.sort(key=lambda item: -item["similarity"])
        for rank, item in enumerate(items, start=1):
            item["rank"] = rank
    return out


def to_isic2019(source: Path, target: Path) -> Path:
    """The run's bundle re-labelled into ISIC 2019's eight classes: HAM10000's codes renamed,
    half of the actinic keratoses become SCC; votes recomputed, probabilities
    re-ordered (SCC gets akiec's), the nearest images by class regrouped."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    queries = json.loads((target / "queries.json").read_text())
    order = [c.code for c in ISIC2019]

    def relabel(code: str, image_id: str) -> str:
        """Half of the actinic keratoses (by image id, the same everywhere) become SCC."""
        return "SCC" if code == "akiec" and zlib.crc32(image_id.encode()) % 2 else HAM_TO_ISIC[code]

    for query in queries:
        query["truth"] = relabel(query["truth"], query["image_id"])
        for aid in ("se_cbir", "cbir"):
            found: dict[str, Any] = query["aids"][aid]
            for item in found["neighbours"]:
                item["truth"] = relabel(item["truth"], item["image_id"])
            truths = [item["truth"] for item in found["neighbours"]]
            found["majority_vote"] = {
                str(k): majority_vote(truths[:k]) for k in range(1, len(truths) + 1)
            }
            if "class_neighbours" in found:
                found["class_neighbours"] = regrouped(found["class_neighbours"], order, relabel)
        for model, values in query["aids"]["probabilities"].items():
            codes = [HAM_TO_ISIC[c["code"]] for c in manifest["classes"]]
            by_code = dict(zip(codes, values, strict=True))
            by_code["SCC"], by_code["AK"] = by_code["AK"] / 2, by_code["AK"] / 2
            query["aids"]["probabilities"][model] = [by_code[code] for code in order]
    manifest["classes"] = [info.as_json() for info in ISIC2019]
    (target / "manifest.json").write_text(json.dumps(manifest))
    (target / "queries.json").write_text(json.dumps(queries))
    return target


def test_an_8_class_9_neighbour_bundle_made_from_the_run_is_imported_and_served(
    app: Flask, tiny_run: TinyRun, tmp_path: Path, login: Callable
) -> None:
    bundle = to_isic2019(tiny_run.study, tmp_path / "isic")
    valid = validate_bundle(bundle)
    assert len(valid.layout.codes) == 8 and valid.layout.max_neighbours == 9
    import_and_serve(app, bundle, login)
    with app.app_context():
        study = db.session.scalars(select(Study)).one()
        assert [c.code for c in study.classes if c.malignant] == ["MEL", "BCC", "AK", "SCC"]
        answers = db.session.scalars(select(Answer)).all()
        assert {a.diagnosis for a in answers} == {"SCC"}
