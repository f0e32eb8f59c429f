"""Fixtures of the organiser pages' tests: the dashboard's and the exports'."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.conftest import FakeClock, add_organiser, add_reader, add_test_study, app_of_its_own
from tests.app.results import Shown, answer_study


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shown(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    bundle_cache: dict[int, Path],
) -> Iterator[Shown]:
    """A study two readers answered (`answer_study`, as the modules' `answered`), made once per
    module and database for the tests that only read the dashboard or the exports: answering
    40 cases through the survey's pages was most of each one's time. Built by the conftest
    fixtures' own code; each test logs in with a client of its own. Tests that change the
    answers, the settings or the analysis keep a function-scoped `answered`."""
    with app_of_its_own(request, tmp_path_factory.mktemp("shown")) as app:
        app.config["CLOCK"] = FakeClock()
        study = add_test_study(app, bundle_cache)
        reader = add_reader(app, study)
        organiser = add_organiser(app)
        yield Shown(app, answer_study(app, app.test_client(), study, reader), organiser)
