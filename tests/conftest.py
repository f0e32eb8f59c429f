"""Fixtures shared by every test package.

`SECBIR_STRICT=1` (set by `.ci/run`) turns every skip into a failure: in CI the reference
data, the PostgreSQL server and the browser must all be there. Tests marked `gpu` may still
skip, since CI has no GPU.
"""

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "thesis-study"
MRMC_REFERENCE = ROOT.parent / "shared" / "reference" / "mrmc"
STRICT = os.environ.get("SECBIR_STRICT") == "1"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One TensorFlow thread per test process: `make test` runs one process per core, and the
    # small presets' runs (threads=1) then compute the same numbers in every process, whichever
    # test started TensorFlow first.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


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


@dataclass(frozen=True)
class TinyRun:
    """A finished tiny pipeline run: its synthetic data set and its run folder."""

    data: Path
    out: Path

    @property
    def study(self) -> Path:
        """The run's study bundle."""
        return self.out / "study"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One `training run --preset tiny` on 120 synthetic 48 px images, made once per `make test`
    and shared by every xdist worker (under a lock): copy it before changing anything."""
    from training import pipeline, synth
    from training.config import get_config

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    run = TinyRun(root / "tiny-data", root / "tiny-run" / "tiny")
    with (root / "tiny-run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run.study / "manifest.json").is_file():
            if not (run.data / "HAM10000_metadata.csv").is_file():
                synth.write_synthetic(run.data, images=120, size=48, seed=3)
            pipeline.run(get_config("tiny"), run.data, run.out)
    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under SECBIR_STRICT=1, report a skipped test as failed, naming why it skipped."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and "gpu" not in item.keywords and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under SECBIR_STRICT=1: {reason}"
