"""The results dashboard: who may see it, and that it shows what readers answered.

Answers are given through the survey's own pages (consent, case page, answer form), so the
dashboard is tested on exactly what the survey stores. Runs on SQLite and PostgreSQL.
"""

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import UndefinedError
from sqlalchemy import select

from app.analysis import CLASSES
from app.extensions import db
from app.models import Enrolment, Role, Study
from tests.app.conftest import PASSWORD, FakeClock, StudyRef, UserRef, add_user, join_study
from tests.app.results import Answered, Shown, answer_study, case_at, heat_counts, page, submit
from tests.app.world import CONSENT

# ---------------------------------------------------------------- answering through the survey


@pytest.fixture
def answered(
    app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef, clock: FakeClock
) -> Answered:
    """Two readers who completed both tasks of `study` (Task 1 50% and 60%, Task 2 80%, 60%)."""
    return answer_study(app, client, study, reader)


def dashboard_routes(study_id: int) -> list[str]:
    """Every dashboard and export address of a study."""
    base = f"/dashboard/{study_id}"
    return [
        f"{base}/",
        f"{base}/confusion-task1.svg",
        f"{base}/confusion-task2.png",
        f"{base}/forest.svg",
        f"{base}/forest.png",
        *(
            f"{base}/export/{name}"
            for name in ("responses", "summary-csv", "summary-json", "imrmc", "mrmcaov")
        ),
    ]


# ---------------------------------------------------------------- access


def test_anonymous_visitors_are_sent_to_the_login(client: FlaskClient, study: StudyRef) -> None:
    for url in dashboard_routes(study.id):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("who", ["reader", "other_reader"])
def test_readers_are_refused(
    request: pytest.FixtureRequest, client: FlaskClient, study: StudyRef, login: Callable, who: str
) -> None:
    login(client, request.getfixturevalue(who))
    for url in dashboard_routes(study.id):
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize("who", ["organiser", "admin"])
def test_staff_get_every_page(
    request: pytest.FixtureRequest, client: FlaskClient, study: StudyRef, login: Callable, who: str
) -> None:
    login(client, request.getfixturevalue(who))
    for url in dashboard_routes(study.id):
        assert client.get(url).status_code == 200, url


def test_unknown_studies_and_exports_are_not_found(
    client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    assert client.get(f"/dashboard/{study.id + 99}/").status_code == 404
    assert client.get(f"/dashboard/{study.id + 99}/export/responses").status_code == 404
    assert client.get(f"/dashboard/{study.id}/export/passwords").status_code == 404
    assert client.get(f"/dashboard/{study.id}/confusion-task3.svg").status_code == 404
    assert client.get(f"/dashboard/{study.id}/confusion-task1.gif").status_code == 404
    assert client.get(f"/dashboard/{study.id}/forest.gif").status_code == 404


def test_the_study_page_links_to_the_dashboard(
    client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    html = client.get(f"/admin/studies/{study.id}").get_data(as_text=True)
    assert f'href="/dashboard/{study.id}/"' in html


# ---------------------------------------------------------------- content


def test_a_study_without_answers_shows_an_empty_state(
    client: FlaskClient, organiser: UserRef, study: StudyRef, reader: UserRef, login: Callable
) -> None:
    login(client, reader)
    client.post(f"/survey/{study.id}/", data=CONSENT)  # enrolled, nothing answered
    client.post("/logout")
    login(client, organiser)
    html = page(client, study)
    assert "No answers yet" in html
    assert reader.pseudonym in html  # the progress table lists the enrolled reader
    assert "0 of 10" in html
    assert 'id="reader-table"' not in html


def test_the_dashboard_shows_accuracies_and_confusion_counts(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    html = page(client, answered.study)
    first, second = answered.readers["first"], answered.readers["second"]
    table = re.search(r'id="reader-table">(.*?)</table>', html, re.S).group(1)
    rows = {
        name: re.search(rf"<th scope=\"row\">{name}</th>(.*?)</tr>", table, re.S).group(1)
        for name in (first.pseudonym, second.pseudonym, "Pooled")
    }
    cells = {name: re.findall(r"<td>(.*?)</td>", row) for name, row in rows.items()}
    # Cells: cases, majority vote, then per task accuracy and confidence (all, right, wrong).
    assert cells[first.pseudonym][0] == "10"
    assert (cells[first.pseudonym][2], cells[first.pseudonym][6]) == ("50.0%", "80.0%")
    assert (cells[second.pseudonym][2], cells[second.pseudonym][6]) == ("60.0%", "60.0%")
    assert (cells["Pooled"][2], cells["Pooled"][6]) == ("55.0%", "70.0%")
    assert cells["Pooled"][3:6] == ["3.00", "3.00", "3.00"]
    assert cells["Pooled"][7:10] == ["4.00", "4.00", "4.00"]
    # Mean ± sample SD of the readers' accuracies: 55.0 ± 7.1 and 70.0 ± 14.1.
    assert "55.0% ± 7.1%" in html
    assert "70.0% ± 14.1%" in html

    for task in (1, 2):
        expected = [[0] * 7 for _ in CLASSES]
        for _, _, t, truth, diagnosis in answered.answers:
            if t == task:
                expected[CLASSES.index(truth)][CLASSES.index(diagnosis)] += 1
        assert heat_counts(html, f"confusion-{task}") == expected
    # Answer changes: the first reader went from 5 to 8 right, the second stayed at 6.
    assert "Wrong → right</dt><dd>3 " in html
    for section in (
        "headline",
        "reader-level",
        "endpoints",
        "bootstrap-result",
        "wilcoxon-result",
        "by-confidence",
        "timing",
    ):
        assert f'id="{section}"' in html
    assert "Obuchowski-Rockette" in html and "McNemar" in html
    # The page leads with the paired primary result, in words, before any table.
    headline = re.search(r'<ul class="headline">(.*?)</ul>', html, re.S).group(1)
    assert html.index('id="headline"') < html.index('id="reader-table"')
    assert (
        "Proportion correct: 70.0% with SE-CBIR 6 against 55.0% with Unaided, 15.0 points higher"
    ) in headline
    assert "Descriptive: McNemar" in html and "Secondary: bootstrap" in html
    # Every comparison on the page names the conditions as readers saw them, never by key.
    level = re.search(r'id="reader-level"(.*?)</ul>', html, re.S).group(1)
    assert "Accuracy, SE-CBIR 6 − Unaided: mean +15.0 pp per reader" in level
    assert "Confidence (1–5), SE-CBIR 6 − Unaided:" in level
    endpoints = re.search(r'id="endpoints"(.*?)</table>', html, re.S).group(1)
    assert '<td class="text">SE-CBIR 6 − Unaided</td>' in endpoints
    assert "se_cbir" not in level + endpoints
    main = html.split('<main id="main"')[1]
    assert "@example.org" not in main  # pseudonyms only by default


def test_the_completed_filter_keeps_readers_who_finished(
    app: Flask, client: FlaskClient, organiser: UserRef, answered: Answered, login: Callable
) -> None:
    second = answered.readers["second"]
    with app.app_context():
        enrolment = db.session.scalar(select(Enrolment).where(Enrolment.user_id == second.id))
        enrolment.finished_at = None  # as if the last answer were still missing
        db.session.commit()
    login(client, organiser)
    html = page(client, answered.study, completed="1")
    table = re.search(r'id="reader-table">(.*?)</table>', html, re.S).group(1)
    assert answered.readers["first"].pseudonym in table
    assert second.pseudonym not in table
    assert "50.0%" in table and "80.0%" in table
    # The downloads keep the filter.
    assert "completed=1" in re.search(r'href="([^"]*export/responses[^"]*)"', html).group(1)


def test_the_reader_filter_shows_one_reader(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    second = answered.readers["second"]
    html = page(client, answered.study, reader=second.pseudonym)
    table = re.search(r'id="reader-table">(.*?)</table>', html, re.S).group(1)
    assert second.pseudonym in table
    assert answered.readers["first"].pseudonym not in table
    assert heat_counts(html, "confusion-1")[0] is not None
    total = sum(map(sum, heat_counts(html, "confusion-1")))
    assert total == 10
    # An unknown pseudonym is ignored rather than showing an empty page by mistake.
    everything = page(client, answered.study, reader="R-NOBODY")
    assert sum(map(sum, heat_counts(everything, "confusion-1"))) == 20


def test_identify_shows_emails_to_staff(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    html = page(client, answered.study, identify="1")
    assert answered.readers["second"].email in html


def test_the_heat_map_downloads(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    svg = client.get(f"/dashboard/{answered.study.id}/confusion-task1.svg")
    assert svg.mimetype == "image/svg+xml"
    assert svg.get_data(as_text=True).lstrip().startswith("<svg")
    assert 'filename="study-' in svg.headers["Content-Disposition"]
    png = client.get(f"/dashboard/{answered.study.id}/confusion-task2.png")
    assert png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")


def endpoint_table(html: str, endpoint: str) -> dict[str, list[str]]:
    """An endpoint's table on the page: its caption and, per row header, the row's cells."""
    table = re.search(rf'<table [^>]*id="endpoint-{endpoint}">(.*?)</table>', html, re.S)
    assert table, f"no table for {endpoint}"
    rows = {
        header: re.findall(r"<td[^>]*>(.*?)</td>", cells)
        for header, cells in re.findall(r'<th scope="row">(.*?)</th>(.*?)</tr>', table.group(1))
    }
    caption = re.search(r"<caption>(.*?)</caption>", table.group(1), re.S)
    assert caption
    return {"caption": [re.sub(r"<[^>]+>", "", caption.group(1))], **rows}


def test_every_endpoint_has_a_table_of_means_and_differences(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    html = page(client, answered.study)
    table = endpoint_table(html, "proportion_correct")
    assert table["caption"] == ["Proportion correct (2 readers)"]
    # A row per condition with its mean, then the difference with its CI and p.
    assert table["Unaided"] == ["55.0%", "", "", ""]
    assert table["SE-CBIR 6"][0] == "70.0%"
    estimate, interval, p = table["SE-CBIR 6 − Unaided"][1:]
    assert estimate == "+15.0 pp" and interval.endswith(" pp") and " to " in interval
    assert re.fullmatch(r"< 0\.001|\d\.\d{3}", p)  # as the page writes p everywhere
    # Headers say what every cell is; endpoints with no figure say why, in one list.
    section = html[html.index('id="every-endpoint"') :]
    section = section[: section.index("</section>")]
    assert section.count("<caption>") == section.count("<table") - 1  # all but the df table
    assert '<th scope="col">Mean</th>' in section and '<th scope="col">95% CI</th>' in section
    unavailable = re.search(r'id="endpoints-unavailable">(.*?)</ul>', section, re.S)
    assert unavailable and "not available (" in unavailable.group(1)
    # The headline's sentences stay first; the tables and the plot follow.
    assert html.index('class="headline"') < html.index('id="every-endpoint"')
    assert html.index('id="every-endpoint"') < html.index('id="reader-table"')


def test_the_page_shows_the_forest_plot_and_links_its_downloads(
    shown: Shown, login: Callable
) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    pseudonym = answered.readers["first"].pseudonym
    html = page(client, answered.study, completed="1")
    image = re.search(r'<figure class="forest">\s*<img src="([^"]+)" alt="([^"]+)">', html)
    assert image, "no forest plot on the page"
    assert image.group(1) == f"/dashboard/{answered.study.id}/forest.svg?completed=1"
    assert "Forest plot" in image.group(2) and "95% confidence interval" in image.group(2)
    links = re.findall(r'href="([^"]*forest\.(?:png|svg)[^"]*)"', html)
    assert sorted(links) == [
        f"/dashboard/{answered.study.id}/forest.png?completed=1",
        f"/dashboard/{answered.study.id}/forest.svg?completed=1",
    ]
    # One reader: no difference has an interval, so no figure, and the tables say why.
    one = page(client, answered.study, reader=pseudonym)
    assert "forest.svg" not in one and 'id="endpoints-unavailable"' in one


def test_the_forest_plot_downloads(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    study = answered.study.id
    svg = client.get(f"/dashboard/{study}/forest.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.headers["Content-Disposition"] == f'attachment; filename="study-{study}-forest.svg"'
    assert svg.headers["Cache-Control"] == "no-store"
    root = ET.fromstring(svg.get_data(as_text=True))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "SE-CBIR 6 − Unaided" in texts and "Proportion correct" in texts
    png = client.get(f"/dashboard/{study}/forest.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.headers["Content-Disposition"] == f'attachment; filename="study-{study}-forest.png"'


def test_a_study_without_answers_has_a_forest_plot_that_says_so(
    client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    svg = client.get(f"/dashboard/{study.id}/forest.svg").get_data(as_text=True)
    assert "No endpoint has a difference to show yet" in svg
    assert "forest.svg" not in page(client, study)  # the page shows its empty state instead


def test_the_page_plans_the_next_study(shown: Shown, login: Callable) -> None:
    """Power and sample size from the study's own variance components: the plot, its
    downloads, and the cases needed per reader count for 80 % and 90 % power."""
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    study = answered.study.id
    html = page(client, answered.study, completed="1")
    section = html[html.index('id="plan"') :]
    section = section[: section.index("</section>")]
    assert "Plan the next study" in section
    image = re.search(r'<img src="([^"]+)" alt="([^"]+)">', section)
    assert image and image.group(1) == f"/dashboard/{study}/power.svg?completed=1"
    assert "Power against cases per reader" in image.group(2)
    assert f"/dashboard/{study}/power.png?completed=1" in section
    table = re.search(r'<table [^>]*id="plan-needed">(.*?)</table>', section, re.S)
    assert table, "no table of the cases needed"
    # Proportion correct: task 2 is 15 points above task 1 (the headline's difference).
    assert "Proportion correct: cases per reader needed to detect the observed" in table.group(1)
    assert "+15.0 pp" in table.group(1) and "this study: 2 readers, 10.0 cases" in table.group(1)
    rows = dict(re.findall(r'<th scope="row">(\d+)</th>(.*?)</tr>', table.group(1)))
    assert sorted(map(int, rows)) == [2, 3, 4, 5, 6, 8, 10, 12, 15, 20]
    for cells in rows.values():
        found = re.findall(r"<td>(.*?)</td>", cells)
        assert len(found) == 2
        assert all(c.isdigit() or c == "more than 2000" for c in found), found
    # One reader has no variance components: the section says so and why.
    one = page(client, answered.study, reader=answered.readers["first"].pseudonym)
    note = re.search(r'<p id="plan-unavailable">(.*?)</p>', one, re.S)
    assert note and "too small to estimate the variance components" in note.group(1)
    assert "2 readers" in note.group(1) and "power.svg" not in one


def test_the_power_plot_downloads(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    study = answered.study.id
    svg = client.get(f"/dashboard/{study}/power.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.headers["Content-Disposition"] == (
        f'attachment; filename="study-{study}-power-proportion_correct.svg"'
    )
    assert svg.headers["Cache-Control"] == "no-store"
    root = ET.fromstring(svg.get_data(as_text=True))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Cases per reader" in texts and "2 readers (this study)" in texts
    png = client.get(f"/dashboard/{study}/power.png")
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG\r\n\x1a\n")
    sens = client.get(f"/dashboard/{study}/power.svg", query_string={"endpoint": "melanoma_auc"})
    assert sens.status_code == 200 and "melanoma" in sens.get_data(as_text=True)
    assert client.get(f"/dashboard/{study}/power.svg?endpoint=nothing").status_code == 404
    assert client.get(f"/dashboard/{study}/power.gif").status_code == 404


def test_auc_endpoints_read_as_aucs_not_percentages(
    client: FlaskClient,
    organiser: UserRef,
    answered: Answered,
    login: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An endpoint named `..._auc` (as the analysis may add) reads 0.xxx, not percent."""

    def with_auc(result: dict) -> dict:
        blocks = dict(result["statistics"]["or_hillis"])
        auc = dict(blocks["proportion_correct"], label="AUC for melanoma")
        auc["means"] = {"unaided": 0.8124, "se_cbir": 0.8631}
        (difference,) = auc["differences"]
        auc["differences"] = [
            dict(difference, estimate=0.0507, ci_low=-0.0123, ci_high=0.1137, p=0.11)
        ]
        blocks["melanoma_auc"] = auc
        statistics = dict(result["statistics"], or_hillis=blocks)
        return dict(result, statistics=statistics)

    wrap_analyse(monkeypatch, with_auc)
    login(client, organiser)
    table = endpoint_table(page(client, answered.study), "melanoma_auc")
    assert table["caption"] == ["AUC for melanoma (2 readers)"]
    assert table["Unaided"][0] == "0.812" and table["SE-CBIR 6"][0] == "0.863"
    assert table["SE-CBIR 6 − Unaided"][1:] == ["+0.051", "-0.012 to +0.114", "0.110"]
    svg = client.get(f"/dashboard/{answered.study.id}/forest.svg").get_data(as_text=True)
    assert "Difference in AUC (first condition − second)" in svg


def test_the_page_has_no_inline_script_or_style(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    html = page(client, answered.study)
    # Scripts only from files of this site (the CSP's script-src 'self'), never inline.
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert [re.sub(r"\?v=[0-9a-f]+", "", s) for s in scripts] == [
        '<script src="/static/js/app.js" defer>'
    ]
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html)
    assert " style=" not in html
    assert PASSWORD not in html


def wrap_analyse(monkeypatch: pytest.MonkeyPatch, change: Callable[[dict], dict]) -> None:
    """Pass every analysis the dashboard runs through `change`."""
    from app.organiser import study_results

    real = study_results.analyse
    monkeypatch.setattr(
        study_results, "analyse", lambda *args, **kwargs: change(real(*args, **kwargs))
    )


def test_a_key_the_page_reads_cannot_silently_go_missing(
    client: FlaskClient,
    organiser: UserRef,
    answered: Answered,
    login: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """StrictUndefined in tests: a renamed analysis key fails instead of rendering blank."""

    def rename(result: dict) -> dict:
        result = dict(result)
        result["timing_renamed"] = result.pop("timing")
        return result

    wrap_analyse(monkeypatch, rename)
    login(client, organiser)
    with pytest.raises(UndefinedError, match="timing"):
        client.get(f"/dashboard/{answered.study.id}/")


# ---------------------------------------------------------------- computed once per answer set


def test_the_analysis_runs_once_per_answer_set_and_again_after_a_new_answer(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    answered: Answered,
    login: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[int] = []

    def count(result: dict) -> dict:
        runs.append(1)
        return result

    wrap_analyse(monkeypatch, count)
    login(client, organiser)
    study = answered.study
    first = page(client, study)
    assert "40 answers" in first
    again = page(client, study)
    assert again[again.index('id="headline"') :] == first[first.index('id="headline"') :]
    assert client.get(f"/dashboard/{study.id}/confusion-task2.svg").status_code == 200
    assert client.get(f"/dashboard/{study.id}/forest.svg").status_code == 200
    assert len(runs) == 1  # the second view and the figures reuse the first analysis
    page(client, study, completed="1")
    assert len(runs) == 2  # other filters: another analysis, kept beside the first

    # A third reader answers one case: the next view analyses the new answer set.
    third = add_user(app, "third.reader@example.org", Role.READER)
    join_study(app, third, study)
    client.post("/logout")
    login(client, third)
    assert client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 303
    case = case_at(app, third, study, 1, 1)
    submit(client, study, 1, 1, case.truth)
    client.post("/logout")
    login(client, organiser)
    after = page(client, study)
    assert len(runs) == 3
    assert "41 answers" in after and third.pseudonym in after
    page(client, study)
    assert len(runs) == 3


def test_a_design_changed_before_any_answer_is_analysed_with_its_own_pairs(
    app: Flask, client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    """One analysis holds the tables of the design's pairs: the same (empty) answer set under
    another design is analysed anew, so every pair the new design offers is there."""
    from app.survey.conditions import three_arm

    login(client, organiser)
    assert client.get(f"/dashboard/{study.id}/").status_code == 200
    with app.app_context():
        record = db.session.get(Study, study.id)
        record.design = "crossover"
        record.conditions = [condition.to_json() for condition in three_arm()]
        db.session.commit()
    for pair in ("unaided~cbir", "unaided~se_cbir", "cbir~se_cbir"):
        assert client.get(f"/dashboard/{study.id}/?pair={pair}").status_code == 200


def test_the_cache_forgets_the_least_recently_used_answer_set() -> None:
    from app.organiser.study_results import ResultCache, StudyResult

    cache = ResultCache(size=2)
    entries = {name: StudyResult(0, {}) for name in "abc"}  # type: ignore[typeddict-item]
    cache.put(("a",), entries["a"])
    cache.put(("b",), entries["b"])
    assert cache.get(("a",)) is entries["a"]  # now the most recently used
    cache.put(("c",), entries["c"])
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) is entries["a"] and cache.get(("c",)) is entries["c"]


def test_a_reader_without_a_condition_is_named_on_the_page_and_in_the_r_script(
    app: Flask, client: FlaskClient, answered: Answered, organiser: UserRef, login: Callable
) -> None:
    """A reader who answered Task 1 only has no figure to compare: left out of every figure
    and every MRMC file, and named with the reason where the organiser looks."""
    third = add_user(app, "third.reader@example.org", Role.READER)
    join_study(app, third, answered.study)
    login(client, third)
    assert client.post(f"/survey/{answered.study.id}/", data=CONSENT).status_code == 303
    for number in range(1, 11):
        submit(client, answered.study, 1, number, "nv")
    client.post("/logout")
    login(client, organiser)
    html = page(client, answered.study)
    assert f"Reader {third.pseudonym}: no answers in" in html
    base = f"/dashboard/{answered.study.id}/export"
    script = client.get(f"{base}/mrmcaov-r").get_data(as_text=True)
    assert f"#   {third.pseudonym}: no answers in" in script
    assert third.pseudonym not in client.get(f"{base}/mrmcaov").get_data(as_text=True)
    summary = json.loads(client.get(f"{base}/summary-json").data)
    assert [r["reader"] for r in summary["left_out"]["readers"]] == [third.pseudonym]
    # Readers left out of one endpoint (too few lesions of a class) are named beside it.
    named = [
        (item["reader"], item["reason"])
        for block in summary["statistics"]["or_hillis"].values()
        for item in block["left_out"]
    ]
    assert named, "the fixture has endpoints some reader has no figure for"
    for reader, reason in named:
        assert f"{reader}, {reason}" in html or f"{reader} ({reason})" in html


def test_a_study_without_a_scale_of_its_own_is_analysed_on_the_levels_present(
    app: Flask, client: FlaskClient, answered: Answered, organiser: UserRef, login: Callable
) -> None:
    """A study record without confidence labels (built outside an import, as the dashboard
    benchmark does) still has its results: the scale is the levels given."""
    with app.app_context():
        record = db.session.get(Study, answered.study.id)
        record.likert = []
        db.session.commit()
    login(client, organiser)
    assert client.get(f"/dashboard/{answered.study.id}/").status_code == 200
    summary = json.loads(client.get(f"/dashboard/{answered.study.id}/export/summary-json").data)
    assert summary["scale"]["labels"] == [] and summary["scale"]["levels"] == 4
    responses = client.get(f"/dashboard/{answered.study.id}/export/responses")
    assert responses.status_code == 200
