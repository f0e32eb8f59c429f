"""Property-based fuzzing (hypothesis) of what accepts input from outside.

The answer endpoint, the login, the bundle import (mutated manifest.json / queries.json
uploaded as a .zip) and the responses CSV reader (`app.analysis.read_responses`) get
arbitrary input. Whatever arrives: never a server error nor an unexpected exception (only the
documented refusal), and a refused request writes nothing.

The hypothesis tests share one app per module on SQLite (resetting the state per example) so
that they stay fast; the deterministic regression tests below them use the `app` fixture and
run on PostgreSQL too. Inputs that hit a known bug in a module owned elsewhere are kept out of
the fuzzers and pinned by their own strict xfail test, named after the bug.
"""

import contextlib
import csv
import io
import json
import math
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from app import create_app
from app.analysis import COLUMNS, Responses, ResponsesError, read_responses
from app.auth.throttle import ip_counter_of
from app.bundle import BundleError, validate_bundle
from app.config import TestConfig
from app.extensions import db
from app.models import (
    Answer,
    AttemptCounter,
    Case,
    Enrolment,
    Role,
    Study,
    StudyStatus,
    User,
)
from studybundle.taxonomy import HAM10000_CODES as CLASS_CODES
from tests.app.bundle_factory import make_bundle
from tests.app.checks import dump, stays_here
from tests.app.conftest import StudyRef, UserRef, add_study, add_user, join_study
from tests.app.reading import case_url, token_of
from tests.app.world import CONSENT, World

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------- one app for the module


@dataclass
class Fuzzed:
    """The module's app: a study, a reader at case 1, an organiser, and the bundle's parts."""

    app: Flask
    study: StudyRef
    reader: UserRef
    organiser: UserRef
    reader_cookie: str
    organiser_cookie: str
    token: str  # the real case token of the reader's first case
    manifest: dict[str, Any]
    queries: list[dict[str, Any]]
    images: dict[str, bytes]

    def client(self, cookie: str | None = None) -> FlaskClient:
        """A fresh client, optionally with a session cookie."""
        client = self.app.test_client()
        if cookie is not None:
            client.set_cookie("session", cookie)
        return client

    def counts(self) -> dict[str, int]:
        """Rows per table, but import_job (each upload's record of progress and outcome)."""
        with self.app.app_context():
            return {
                table.name: db.session.scalar(select(func.count()).select_from(table)) or 0
                for table in db.metadata.sorted_tables
                if table.name != "import_job"
            }


def logged_in_cookie(app: Flask, user: UserRef) -> str:
    """A session cookie of `user`."""
    client = app.test_client()
    response = client.post("/login", data={"email": user.email, "password": user.password})
    assert response.status_code == 302
    return client.get_cookie("session").value


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """The module's app on SQLite, set up once."""
    root = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        TestConfig,
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root / 'fuzz.sqlite'}",
            "STUDY_IMAGES": str(root / "images"),
        },
    )
    with app.app_context():
        db.create_all()
    bundle = make_bundle(root / "bundle", cases=6, seed=21, pool=10)
    study = add_study(app, bundle, "Fuzz study", status=StudyStatus.OPEN, cases_per_reader=3)
    reader = add_user(app, "reader@example.org", Role.READER)
    join_study(app, reader, study)
    organiser = add_user(app, "organiser@example.org", Role.ORGANISER)
    reader_cookie = logged_in_cookie(app, reader)
    client = app.test_client()
    client.set_cookie("session", reader_cookie)
    assert client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 303
    page = client.get(case_url(study.id, 1, 1))
    assert page.status_code == 200
    yield Fuzzed(
        app,
        study,
        reader,
        organiser,
        reader_cookie,
        logged_in_cookie(app, organiser),
        token_of(page),
        json.loads((bundle / "manifest.json").read_text()),
        json.loads((bundle / "queries.json").read_text()),
        {p.name: p.read_bytes() for p in (bundle / "images").iterdir()},
    )
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# ---------------------------------------------------------------- the answer endpoint

CODES = st.sampled_from(CLASS_CODES)


# Any character a browser can send (lone surrogates cannot be encoded as UTF-8).
CHARACTERS = st.characters(blacklist_categories=("Cs",))


def long_text(minimum: int = 1000, maximum: int = 20_000) -> st.SearchStrategy[str]:
    """A very long string (a repeated character, cheap to generate)."""
    return st.builds(lambda c, n: c * n, CHARACTERS, st.integers(minimum, maximum))


ANY_TEXT = st.one_of(st.text(max_size=40), long_text())
DIAGNOSES = st.one_of(
    CODES, CODES.map(str.upper), CODES.map(lambda c: f" {c}"), ANY_TEXT, st.just("")
)
CONFIDENCES = st.one_of(
    st.integers(-3, 8).map(str),
    st.sampled_from(["3 ", " 4", "03", "+3", "3.0", "1e0", "٣", "３", "0x3", "", "6", "-1"]),
    ANY_TEXT,
)
FIELD_NAMES = st.text(min_size=1, max_size=20).filter(
    lambda n: n not in ("diagnosis", "confidence", "token", "csrf_token")
)


def valid_confidence(value: str) -> bool:
    """The answer form's rule, restated: at most three ASCII digits (spaces around) meaning 1
    to 5."""
    text = value.strip()
    return len(text) <= 3 and text.isascii() and text.isdigit() and 1 <= int(text) <= 5


@FUZZ
@given(
    diagnosis=st.none() | DIAGNOSES,
    confidence=st.none() | CONFIDENCES,
    token=st.none() | st.sampled_from(["REAL", "UPPER", "SHORT"]) | ANY_TEXT,
    extra=st.dictionaries(FIELD_NAMES, ANY_TEXT, max_size=3),
)
def test_the_answer_endpoint_stores_a_valid_answer_once_and_nothing_else(
    fuzzed: Fuzzed,
    diagnosis: str | None,
    confidence: str | None,
    token: str | None,
    extra: dict[str, str],
) -> None:
    real = fuzzed.token
    token = {"REAL": real, "UPPER": real.upper(), "SHORT": real[:-1]}.get(token or "", token)
    form = dict(extra)
    for name, value in (("diagnosis", diagnosis), ("confidence", confidence), ("token", token)):
        if value is not None:
            form[name] = value
    valid = token == real and diagnosis in CLASS_CODES and valid_confidence(confidence or "")
    url = case_url(fuzzed.study.id, 1, 1)
    before = fuzzed.counts()
    response = fuzzed.client(fuzzed.reader_cookie).post(url, data=form)
    after = fuzzed.counts()
    app = fuzzed.app
    if valid:
        assert response.status_code == 303
        assert after == {**before, "answer": before["answer"] + 1}
        with app.app_context():
            stored = db.session.scalars(select(Answer)).one()
            assert (stored.diagnosis, stored.confidence) == (diagnosis, int(confidence.strip()))
            db.session.execute(delete(Answer))  # back to case 1 for the next example
            db.session.commit()
    else:
        assert response.status_code == 400, response.status_code
        assert after == before


@FUZZ
@given(
    study_id=st.integers(min_value=0, max_value=3) | st.integers(min_value=0, max_value=2**31 - 1),
    task=st.integers(min_value=0, max_value=2**31 - 1),
    number=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_case_addresses_never_fail(fuzzed: Fuzzed, study_id: int, task: int, number: int) -> None:
    client = fuzzed.client(fuzzed.reader_cookie)
    before = fuzzed.counts()
    for method in ("GET", "POST"):
        url = f"/survey/{study_id}/task/{task}/case/{number}"
        response = client.open(url, method=method, data={"token": "x"})
        assert response.status_code in (200, 302, 303, 400, 403, 404), (url, response.status_code)
    # Opening a case may record when it was first shown; nothing else.
    assert fuzzed.counts() == before


# ---------------------------------------------------------------- the login


def reset_logins(app: Flask) -> None:
    """Forget failed logins, so that every example starts unthrottled."""
    with app.app_context():
        db.session.execute(delete(AttemptCounter))
        db.session.execute(update(User).values(failed_logins=0, locked_until=None))
        db.session.commit()


@FUZZ
@given(
    email=st.one_of(st.just("REAL"), st.just("REAL_UPPER"), st.emails(), ANY_TEXT, st.none()),
    password=st.one_of(st.just("REAL"), ANY_TEXT, st.none()),
    next_url=st.none() | st.text(max_size=60) | st.sampled_from(["/admin/", "//x.example"]),
    extra=st.dictionaries(FIELD_NAMES, st.text(max_size=20), max_size=2),
)
def test_the_login_answers_every_input_sensibly(
    fuzzed: Fuzzed,
    email: str | None,
    password: str | None,
    next_url: str | None,
    extra: dict[str, str],
) -> None:
    app = fuzzed.app
    reset_logins(app)
    real = fuzzed.organiser
    email = {"REAL": real.email, "REAL_UPPER": real.email.upper()}.get(email or "", email)
    password = real.password if password == "REAL" else password
    form = dict(extra)
    if email is not None:
        form["email"] = email
    if password is not None:
        form["password"] = password
    query = {"next": next_url} if next_url is not None else None
    before = fuzzed.counts()
    client = fuzzed.client()
    response = client.post("/login", data=form, query_string=query)
    after = fuzzed.counts()
    right = email is not None and email.strip().lower() == real.email and password == real.password
    if right:
        assert response.status_code == 302
        assert stays_here(response.headers["Location"]), response.headers["Location"]
    else:
        assert response.status_code in (200, 401), response.status_code
    with app.app_context():
        failures = ip_counter_of("127.0.0.1")
    assert failures == (1 if response.status_code == 401 else 0)
    assert {**after, "attempt_counter": 0} == {**before, "attempt_counter": 0}
    logged_in = client.get("/password").status_code == 200
    assert logged_in == right


# ---------------------------------------------------------------- the bundle import

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: also beyond float range (refused, never a crash)
    st.sampled_from([10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)


def paths_in(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (tuple of keys and indexes) in a JSON document, the document itself first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(item, (*prefix, key))
    elif isinstance(value, list):
        # The first two items are enough: the others are checked by the same code.
        for index, item in enumerate(value[:2]):
            yield from paths_in(item, (*prefix, index))


def mutate(document: Any, path: tuple, action: str, value: Any) -> Any:
    """`document` with the item at `path` replaced, deleted, or given an extra key."""
    if not path:
        return value if action != "keep" else document
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "extra" and isinstance(parent[last], dict):
        parent[last]["unexpected"] = value
    else:
        parent[last] = value
    return document


def bundle_zip(fuzzed: Fuzzed, files: dict[str, bytes]) -> bytes:
    """A bundle .zip: the given JSON files and every image."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(f"study/{name}", data)
        for name, data in fuzzed.images.items():
            archive.writestr(f"study/images/{name}", data)
    return buffer.getvalue()


def image_folders(app: Flask) -> set[str]:
    """The study image folders on disk."""
    root = Path(app.config["STUDY_IMAGES"])
    return {p.name for p in root.iterdir()} if root.exists() else set()


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_a_mutated_bundle_is_imported_whole_or_refused_with_a_reason(
    fuzzed: Fuzzed, data: st.DataObject
) -> None:
    documents = {
        "manifest.json": json.loads(json.dumps(fuzzed.manifest)),
        "queries.json": json.loads(json.dumps(fuzzed.queries)),
    }
    files: dict[str, bytes] = {}
    target = data.draw(st.sampled_from(sorted(documents)), label="file")
    for name, document in documents.items():
        if name == target:
            kind = data.draw(st.sampled_from(["json", "json", "json", "bytes", "missing"]))
            if kind == "missing":
                continue
            if kind == "bytes":
                files[name] = data.draw(st.binary(max_size=200), label="bytes")
                continue
            path = data.draw(st.sampled_from(list(paths_in(document))), label="path")
            action = data.draw(st.sampled_from(["replace", "delete", "extra"]), label="action")
            if not path:
                action = "replace"
            value = data.draw(JSON_VALUES, label="value")
            document = mutate(document, path, action, value)
        files[name] = json.dumps(document).encode()
    app = fuzzed.app
    before, folders = fuzzed.counts(), image_folders(app)
    response = fuzzed.client(fuzzed.organiser_cookie).post(
        "/admin/studies/import",
        data={"name": "Fuzzed", "upload": (io.BytesIO(bundle_zip(fuzzed, files)), "b.zip")},
    )
    after = fuzzed.counts()
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 400:
        assert "The bundle was not imported" in response.text
        assert after == before and image_folders(app) == folders
        return
    # Imported (a mutation the format allows, e.g. in provenance) or recognised as imported.
    if after != before:
        assert after["study"] == before["study"] + 1
        queries = json.loads(files["queries.json"])
        assert after["case"] - before["case"] == len(queries)
        assert after["neighbour"] - before["neighbour"] == 6 * len(queries)
        assert len(image_folders(app)) == len(folders) + 1


# ---------------------------------------------------------------- the responses CSV


def base_rows(rng: random.Random) -> list[dict[str, str]]:
    """A small valid set of answers: two readers, three images, both tasks."""
    rows = []
    for reader in ("R-1", "R-2"):
        for image in ("img-a", "img-b", "img-c"):
            truth = rng.choice(CLASS_CODES)
            for task in ("1", "2"):
                rows.append(
                    {
                        "reader": reader,
                        "image_id": image,
                        "truth": truth,
                        "task": task,
                        "diagnosis": rng.choice(CLASS_CODES),
                        "confidence": str(rng.randint(1, 5)),
                        "majority_vote": rng.choice(CLASS_CODES),
                        "note": "",
                    }
                )
    return rows


def csv_text(header: list[str], rows: list[list[str]], delimiter: str) -> str:
    """Rows as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


# Carriage returns, fields around the csv module's 131,072-character limit, and (below)
# bytes that are not UTF-8 are all drawn: each must be read or refused with ResponsesError.
CELL_TEXT = (
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
    | long_text(200, 5000)
    | long_text(130_000, 132_000)
)


@settings(FUZZ, max_examples=100)
@given(data=st.data(), seed=st.integers(0, 1000))
def test_read_responses_returns_answers_or_names_the_problem(
    data: st.DataObject, seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rows = base_rows(random.Random(seed))
    header = list(rows[0])
    table = [[row[c] for c in header] for row in rows]
    for _ in range(data.draw(st.integers(0, 4), label="mutations")):
        kind = data.draw(
            st.sampled_from(["cell", "header", "drop column", "short row", "long row", "blank"])
        )
        row = data.draw(st.integers(0, len(table) - 1), label="row")
        column = data.draw(st.integers(0, len(header) - 1), label="column")
        if kind == "cell":
            table[row] += [""] * (column + 1 - len(table[row]))
            table[row][column] = data.draw(CELL_TEXT, label="cell")
        elif kind == "header":
            header[column] = data.draw(CELL_TEXT, label="header")
        elif kind == "drop column" and len(header) > 1:
            header.pop(column)
            for fields in table:
                del fields[column : column + 1]
        elif kind == "short row":
            table[row] = table[row][: data.draw(st.integers(0, len(table[row])))]
        elif kind == "long row":
            table[row].append(data.draw(CELL_TEXT, label="extra field"))
        elif kind == "blank":
            table.insert(row, [])
    delimiter = data.draw(st.sampled_from([",", ";"]), label="delimiter")
    text = csv_text(header, table, delimiter)
    if data.draw(st.booleans(), label="cut"):
        text = text[: data.draw(st.integers(0, len(text)), label="cut at")]
    if data.draw(st.booleans(), label="old Mac line ends"):
        text = text.replace("\n", "\r")
    raw = text.encode()
    if data.draw(st.booleans(), label="byte-order mark"):  # as spreadsheets write files
        raw = b"\xef\xbb\xbf" + raw
    sources: list[Any] = [io.StringIO(text, newline="")]
    if data.draw(st.integers(0, 4), label="not UTF-8") == 0:  # e.g. saved as Latin-1
        at = data.draw(st.integers(0, len(raw)), label="bad byte at")
        bad = data.draw(st.sampled_from([b"\xe4", b"\xff", b"\xc3(", b"\xed\xa0\x80"]))
        raw = raw[:at] + bad + raw[at:]
        sources = []  # no text stream can hold these bytes
    path = tmp_path_factory.mktemp("csv") / "responses.csv"
    path.write_bytes(raw)
    outcomes = []
    for source in (*sources, io.BytesIO(raw), path):
        try:
            responses = read_responses(source)
        except ResponsesError as error:
            assert str(error), "a refusal must say why"
            outcomes.append(("error", str(error)))
        else:
            assert isinstance(responses, Responses)
            outcomes.append(("ok", len(responses)))
            for row in responses.rows():
                assert set(COLUMNS) <= set(row)  # rows may name their condition too
                assert row["task"] in (1, 2) and 1 <= row["confidence"] <= 5
    # The source's kind changes nothing.
    assert all(outcome == outcomes[0] for outcome in outcomes), outcomes


# ---------------------------------------------------------------- known bugs, pinned

CSV_HEADER = ",".join(COLUMNS) + "\n"


def test_a_csv_that_is_not_utf8_is_refused_with_responses_error() -> None:
    latin1 = (CSV_HEADER + "R-1,Bäckerei,nv,1,nv,3,nv\n").encode("latin-1")
    with pytest.raises(ResponsesError):
        read_responses(io.BytesIO(latin1))


def test_a_csv_with_a_huge_field_is_refused_with_responses_error() -> None:
    with pytest.raises(ResponsesError):
        read_responses(io.StringIO(CSV_HEADER + "R-1," + "x" * 200_000 + ",nv,1,nv,3,nv\n"))


def test_a_csv_with_carriage_returns_is_read_or_refused() -> None:
    text = (CSV_HEADER + "R-1,img-a,nv,1,nv,3,nv\n").replace("\n", "\r")
    with contextlib.suppress(ResponsesError):  # a refusal naming the problem is fine too
        assert len(read_responses(io.BytesIO(text.encode()))) == 1


def test_a_huge_integer_similarity_is_refused_with_bundle_error(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "b", cases=3, seed=22, pool=8)
    queries = json.loads((folder / "queries.json").read_text())
    queries[0]["neighbours"][0]["similarity"] = 10**400
    (folder / "queries.json").write_text(json.dumps(queries))
    with pytest.raises(BundleError):
        validate_bundle(folder)


def test_deeply_nested_json_is_refused_with_bundle_error(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "b", cases=3, seed=23, pool=8)
    (folder / "queries.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleError):
        validate_bundle(folder)


def test_a_nul_character_in_a_form_is_refused_not_a_server_error(
    app: Flask, study: StudyRef, organiser: UserRef
) -> None:
    # PostgreSQL cannot compare a NUL: app/auth/access.py refuses control characters as a form
    # error.
    client = app.test_client()
    before = dump(app)
    response = client.post("/login", data={"email": "a\x00b@example.org", "password": "x" * 12})
    assert response.status_code in (200, 400, 401)
    assert {k: v for k, v in dump(app).items() if k != "attempt_counter"} == {
        k: v for k, v in before.items() if k != "attempt_counter"
    }


def test_a_nan_in_a_bundles_provenance_is_imported_or_refused(app: Flask, tmp_path: Path) -> None:
    # PostgreSQL's JSON type refuses NaN: app/bundle.py refuses NaN and Infinity on reading.
    folder = make_bundle(tmp_path / "b", cases=3, seed=24, pool=8)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["provenance"]["validation_loss"] = math.nan  # e.g. a diverged training run
    (folder / "manifest.json").write_text(json.dumps(manifest))
    from app.bundle import import_bundle

    with app.app_context():
        try:
            study, created = import_bundle(folder, "NaN", app.config["STUDY_IMAGES"])
        except BundleError:
            return
        assert created and db.session.get(Study, study.id) is not None


# Integer path parts beyond what the database's integer columns hold.
HUGE = (2**31, 2**63, 10**30)
INT_ROUTES = sorted(
    (rule.endpoint, name)
    for rule in create_app(
        TestConfig, {"SQLALCHEMY_DATABASE_URI": "sqlite://"}
    ).url_map.iter_rules()
    for name, converter in rule._converters.items()
    if type(converter).__name__ == "IntegerConverter"
)


def huge_values(world: World, endpoint: str, name: str, huge: int) -> dict[str, Any]:
    """Real URL arguments for `endpoint`, with `name` replaced by `huge`."""
    values = world.url_values(endpoint)[0]
    return {**values, name: huge}


def test_an_integer_too_large_for_the_database_is_404(world: World) -> None:
    # app/__init__.py bounds every <int:...> by the database's INTEGER: routing answers 404.
    # Every route and integer part in turn, on one world (a world per route took 100 of this
    # module's 110 s): each request must leave the database as it was, checked per route, so
    # a route sees what a world of its own would show it, but the invitations that building
    # the other routes' URLs made.
    assert len(INT_ROUTES) > 40  # read from the url map: the routes were found
    wrong: list[tuple[str, str, str, int]] = []
    changed: list[tuple[str, str]] = []
    for endpoint, name in INT_ROUTES:
        role = "reader" if endpoint.startswith("survey.") else "organiser"
        client = world.client(role)
        rule = next(world.app.url_map.iter_rules(endpoint))
        urls = [world.url(endpoint, huge_values(world, endpoint, name, huge)) for huge in HUGE]
        before = dump(world.app)
        for url in urls:
            for method in sorted(rule.methods & {"GET", "POST"}):
                response = client.open(url, method=method, data={})
                if response.status_code not in (302, 400, 403, 404):
                    wrong.append((endpoint, method, url, response.status_code))
        if dump(world.app) != before:
            changed.append((endpoint, name))
    assert not wrong, wrong
    assert not changed, changed


def test_the_fuzzers_use_a_reader_who_is_enrolled(fuzzed: Fuzzed) -> None:
    # Guards the fixture: without an enrolment every answer would be refused for that reason.
    with fuzzed.app.app_context():
        assert db.session.scalar(select(func.count(Enrolment.id))) == 1
        cases = select(func.count(Case.id)).where(Case.study_id == fuzzed.study.id)
        assert db.session.scalar(cases) == 6


def test_a_non_ascii_case_token_is_refused_not_a_server_error(fuzzed: Fuzzed) -> None:
    # Found by the answer fuzzer: hmac.compare_digest raised TypeError on non-ASCII text.
    before = fuzzed.counts()
    response = fuzzed.client(fuzzed.reader_cookie).post(
        case_url(fuzzed.study.id, 1, 1),
        data={"diagnosis": "nv", "confidence": "3", "token": "é" + fuzzed.token[1:]},
    )
    assert response.status_code == 400 and fuzzed.counts() == before
