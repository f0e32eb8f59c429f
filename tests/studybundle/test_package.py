"""The bundle package's boundaries: it pulls in neither Flask nor TensorFlow, and the web app
pulls in nothing of training/ through it."""

import subprocess
import sys

from tests.conftest import ROOT


def imported_after(statement: str) -> set[str]:
    """The top-level modules loaded by a fresh interpreter after running `statement`."""
    listing = "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    code = f"{statement}\nimport sys\n{listing}"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_the_package_imports_neither_flask_nor_tensorflow() -> None:
    loaded = imported_after(
        "import studybundle, studybundle.archive, studybundle.read, studybundle.taxonomy"
    )
    assert "studybundle" in loaded
    assert loaded.isdisjoint({"flask", "werkzeug", "sqlalchemy", "tensorflow", "keras"})
    assert loaded.isdisjoint({"app", "training"})


def test_the_web_app_imports_no_training_code() -> None:
    loaded = imported_after("from app import create_app\nimport app.bundle, app.cli, app.organiser")
    assert "studybundle" in loaded
    assert loaded.isdisjoint({"training", "tensorflow", "keras"})
