"""A real server and a real headless Chromium for the end-to-end tests.

The app runs in this process (werkzeug's server in a thread) on a SQLite file, with CSRF on as
in production. Its clock is a `FakeClock` object that the test moves directly: the server reads
`app.config["CLOCK"]` on every request, so no test-only HTTP endpoint is needed.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import StudyStatus
from tests.app.bundle_factory import make_bundle
from tests.app.conftest import FakeClock
from tests.app.keyed_images import import_study

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class LiveServer:
    """The running app: its base URL, the Flask app (for set-up and checks) and its clock."""

    url: str
    app: Flask
    clock: FakeClock
    study_id: int


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Keep each phase's report on the test item, so fixtures can tell that a test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@contextmanager
def serve(folder: Path) -> Iterator[LiveServer]:
    """The app on a free localhost port with a 4-cases-per-reader study (24 h wash-out)."""
    bundle = make_bundle(folder / "bundle", cases=12, seed=3)
    clock = FakeClock()
    app = create_app(
        TestConfig,
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'e2e.sqlite'}",
            "STUDY_IMAGES": str(folder / "images"),
            "WTF_CSRF_ENABLED": True,
            "CLOCK": clock,
        },
    )
    with app.app_context():
        db.create_all()
        study = import_study(bundle, "Browser study")
        study.status = StudyStatus.OPEN
        study.cases_per_reader = 4
        study.washout_hours = 24.0
        study.information = "A study run by the end-to-end test.\n\nIt has two tasks."
        db.session.commit()
        study_id = study.id
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app, clock, study_id)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A fresh server for one test."""
    with serve(tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server shared by the tests of a module (they must not depend on each other's data)."""
    with serve(tmp_path_factory.mktemp("e2e")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (skipped when none is installed; CI installs one)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def pages(request: pytest.FixtureRequest, browser: object) -> Iterator[dict]:
    """Open pages by name; on a failure each one's screenshot goes to test-artifacts/."""
    opened: dict = {}
    yield opened
    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for name, page in opened.items():
            try:
                page.screenshot(path=str(ARTIFACTS / f"failure-{request.node.name}-{name}.png"))
            except Exception as error:  # a crashed page: the test's own error says more
                print(f"no screenshot of {name}: {error}")
    for page in opened.values():
        page.context.close()
