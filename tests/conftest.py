"""Fixtures shared by every test package.

`SECBIR_STRICT=1` (set by `.ci/run`) turns every skip into a failure: in CI the reference
data, the PostgreSQL server and the browser must all be there. Tests marked `gpu` may still
skip, since CI has no GPU.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "thesis-study"
MRMC_REFERENCE = ROOT.parent / "shared" / "reference" / "mrmc"
STRICT = os.environ.get("SECBIR_STRICT") == "1"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The thesis study's real data in `../shared/reference/thesis-study/`, or a skip."""
    if not (REFERENCE / "HAM10000_metadata.csv").is_file():
        pytest.skip(f"reference data not found at {REFERENCE} (only a fresh clone lacks it)")
    return REFERENCE


@pytest.fixture(scope="session")
def mrmc_reference_dir() -> Path:
    """MRMCaov's figures on three designs in `../shared/reference/mrmc/`, or a skip."""
    if not (MRMC_REFERENCE / "thesis_study.mrmcaov.json").is_file():
        pytest.skip(f"MRMC reference figures not found at {MRMC_REFERENCE}")
    return MRMC_REFERENCE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under SECBIR_STRICT=1, report a skipped test as failed, naming why it skipped."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and "gpu" not in item.keywords and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under SECBIR_STRICT=1: {reason}"
