"""The study report: one valid, self-contained HTML page with every section; the design's
fingerprint; the methods written from the design; `python -m app.analysis --report`."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import html5lib
import pytest

from app.analysis import analyse, read_responses
from app.analysis.__main__ import main
from app.analysis.fingerprint import canonical_json, fingerprint
from app.analysis.html_report import Flow, Registration, render_report, style_hash
from app.analysis.methods import REFERENCES, methods
from app.analysis.plots import FlowStep, flow_svg, reliance_svg, timing_svg
from app.analysis.power import needed_rows, plan_endpoint
from app.analysis.responses import COLUMNS
from app.analysis.results import AnalysisResult
from tests.analysis.helpers import reference_rows, to_csv

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "mrmc"
SECTIONS = ("flow", "methods", "results", "reliance", "timing", "planning", "fingerprint")
CITATIONS = {work.url for work in REFERENCES}

DESIGN: dict[str, Any] = {
    "format": "secbir-design/1",
    "design": "crossover",
    "design_name": "Counterbalanced crossover",
    "sessions": 3,
    "conditions": [
        {"key": "unaided", "label": "No aid", "short": "Unaided", "aid": "unaided", "k": 0},
        {"key": "cbir", "label": "CBIR similar images, 6 labelled", "short": "CBIR 6"},
        {"key": "se_cbir", "label": "SE-CBIR similar images, 6 labelled", "short": "SE-CBIR 6"},
    ],
    "washout_hours": 336.0,
    "rotate_later_sessions": True,
    "reshuffle_later_sessions": True,
    "probes": {"share": 0.1},
    "cases": {
        "pool": 120,
        "per_reader": 40,
        "sampling": "stratified",
        "bundle_digest": "ab" * 32,
        "case_keys_sha256": "cd" * 32,
    },
    "classes": [{"code": "mel", "malignant": True}, {"code": "nv", "malignant": False}],
    "confidence_scale": ["not sure", "fairly sure", "sure"],
    "randomisation": {
        "readers_to_orders": "balanced blocks in enrolment order",
        "study_seed_sha256": "ef" * 32,
        "reader_seeds": "drawn for each reader when they enrol",
    },
}


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fully crossed three-arm reference set as a responses file."""
    rows = reference_rows(SHARED / "crossed_three_arms.csv")
    path = tmp_path_factory.mktemp("report") / "crossed.csv"
    path.write_text(to_csv(rows, (*COLUMNS, "condition")), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def result(csv_path: Path) -> AnalysisResult:
    """Its analysis."""
    return analyse(read_responses(csv_path), bootstrap=0)


def report_html(result: AnalysisResult, design: dict[str, Any] | None = DESIGN) -> str:
    """The report of `result` under `design` (from a responses file, as the CLI makes it)."""
    registration = (
        Registration(None, None, "No design.")
        if design is None
        else Registration.of_document(design, "A test design")
    )
    return render_report(result, registration, Flow.of_result(result, design), "Test").html


class Links(HTMLParser):
    """Every address in a src or href, every element id, the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[tuple[str, str, str]] = []  # tag, attribute, value
        self.ids: set[str] = set()
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "xlink:href", "data"):
                self.addresses.append((tag, name, value or ""))
            if name == "id" and value:
                self.ids.add(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def parsed(html: str) -> Links:
    """The report's links, ids and styles."""
    links = Links()
    links.feed(html)
    links.close()
    return links


def test_the_report_is_valid_html_with_every_section(result: AnalysisResult) -> None:
    html = report_html(result)
    # Strict: any parse error of the WHATWG algorithm (a stray end tag, a bad nesting) fails.
    html5lib.HTMLParser(strict=True).parse(html)
    assert html.startswith("<!DOCTYPE html>")
    links = parsed(html)
    assert set(SECTIONS) <= links.ids
    # Each endpoint's table, the forest plot, the reliance, time and flow figures, inline.
    for name, block in result["statistics"]["or_hillis"].items():
        assert (f"endpoint-{name}" in links.ids) == block["available"], name
    assert html.count("<svg") == 5  # flow, forest, reliance, time, power
    assert "Differences between conditions, 95% CI" in html
    assert 'id="design-sha256"' in html and fingerprint(DESIGN) in html


def test_the_report_is_self_contained(result: AnalysisResult) -> None:
    html = report_html(result)
    links = parsed(html)
    # Nothing to fetch: no src at all, and the only addresses are the references' links.
    assert [a for a in links.addresses if a[1] != "href"] == []
    hrefs = [value for _, _, value in links.addresses]
    assert set(hrefs) == CITATIONS
    assert not re.search(r"<(link|script|img|iframe|object|embed)\b", html)
    assert "url(" not in "".join(links.styles) and "@import" not in "".join(links.styles)
    # One inline stylesheet, with print rules, whose hash is what the dashboard's CSP allows.
    assert len(links.styles) == 1 and "@media print" in links.styles[0]
    css = links.styles[0]
    assert (
        style_hash(css)
        == render_report(
            result, Registration(None, None, "-"), Flow.of_result(result, None), "T"
        ).style_hash
    )


def test_from_a_responses_file_alone_the_report_says_what_it_cannot_tell(
    result: AnalysisResult,
) -> None:
    html = report_html(result, None)
    assert "Readers invited: not known" in html and "Cases in the pool: not known" in html
    assert "not how many readers were invited, enrolled, withdrew" in html
    assert "nor how many cases the pool held" in html
    assert "design was not given" in html
    assert 'id="design-sha256"' not in html
    html5lib.HTMLParser(strict=True).parse(html)


def test_the_methods_follow_the_design(result: AnalysisResult) -> None:
    paragraphs = dict(methods(result, DESIGN).paragraphs)
    design = paragraphs["Design"]
    assert "Counterbalanced crossover reader study of 3 conditions" in design
    assert "40 cases" in design and "pool of 120 cases" in design and "stratified" in design
    assert "14 days" in design and "turned by 180 degrees" in design
    assert "Williams design" in design
    assert "10% of the aided readings" in paragraphs["Faulty-aid probes"]
    analysis = paragraphs["Analysis"]
    assert "Obuchowski-Rockette model [1]" in analysis and "degrees of freedom [2]" in analysis
    assert "MRMCaov [3, 4]" in analysis
    sequential = {**DESIGN, "design": "sequential", "design_name": "Sequential replay"}
    sequential["probes"] = {"share": 0.0}
    other = dict(methods(result, sequential).paragraphs)
    assert "in the listed order" in other["Design"] and "Williams" not in other["Design"]
    assert other["Faulty-aid probes"] == "No faulty-aid probes were shown."


def test_the_fingerprint_is_stable_and_changes_with_the_design() -> None:
    reordered = dict(reversed(list(DESIGN.items())))
    assert fingerprint(reordered) == fingerprint(DESIGN)
    assert fingerprint(json.loads(json.dumps(DESIGN))) == fingerprint(DESIGN)
    assert canonical_json(DESIGN) == canonical_json(reordered)
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint(DESIGN))
    changed = copy.deepcopy(DESIGN)
    changed["washout_hours"] = 24.0
    assert fingerprint(changed) != fingerprint(DESIGN)
    swapped = copy.deepcopy(DESIGN)
    swapped["conditions"].reverse()
    assert fingerprint(swapped) != fingerprint(DESIGN)
    with pytest.raises(ValueError, match="plain JSON"):
        fingerprint({"x": {1, 2}})
    with pytest.raises(ValueError):
        fingerprint({"x": float("nan")})


def test_a_design_json_that_does_not_match_its_hash_is_flagged(result: AnalysisResult) -> None:
    document = {"sha256": fingerprint(DESIGN), "design": {**DESIGN, "washout_hours": 1.0}}
    registration = Registration.of_document(document, "A tampered file")
    assert not registration.intact
    html = render_report(result, registration, Flow.of_result(result, None), "T").html
    assert 'id="design-tampered"' in html
    intact = Registration.of_document({"sha256": fingerprint(DESIGN), "design": DESIGN}, "ok")
    assert intact.intact and intact.sha256 == fingerprint(DESIGN)
    with pytest.raises(ValueError, match="no design"):
        Registration.of_document({"something": 1}, "x")


def test_the_command_line_writes_the_report(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    design_file = tmp_path / "design.json"
    design_file.write_text(
        json.dumps({"sha256": fingerprint(DESIGN), "frozen": True, "design": DESIGN}),
        encoding="utf-8",
    )
    out = tmp_path / "report.html"
    args = [str(csv_path), "--bootstrap", "0", "--report", str(out), "--design", str(design_file)]
    assert main(args) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    html = out.read_text(encoding="utf-8")
    assert fingerprint(DESIGN) in html and "Counterbalanced crossover" in html
    assert "Cases in the pool: 120" in html
    html5lib.HTMLParser(strict=True).parse(html)


def test_the_command_line_refuses_a_bad_design(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert main([str(csv_path), "--design", str(tmp_path / "none.json")]) == 2
    assert "--design goes with --report" in capsys.readouterr().err
    missing = [str(csv_path), "--report", str(out), "--design", str(tmp_path / "none.json")]
    assert main(missing) == 2
    assert "cannot read the design" in capsys.readouterr().err
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    assert main([str(csv_path), "--report", str(out), "--design", str(empty)]) == 2
    assert "no design in it" in capsys.readouterr().err
    assert not out.exists()


def test_the_reliance_time_and_flow_figures_draw_the_result(result: AnalysisResult) -> None:
    reliance = reliance_svg(result)
    for key, block in result["reliance"]["conditions"].items():
        shares = block["all"]
        assert f"aid wrong ({shares['aid_wrong']})" in reliance, key
        assert f"{100 * shares['aided_accuracy_aid_right']:.0f}%" in reliance
    timing = timing_svg(result)
    times = [b["all"] for b in result["timing"]["conditions"].values()]
    if any(t["median"] is not None for t in times):
        assert all(f"{t['median']:.1f} (" in timing for t in times if t["median"] is not None)
    else:
        assert "No answer has a time yet." in timing
    flow = flow_svg([("Readers", [FlowStep("Invited: 5", "Withdrew: 1"), FlowStep("Analysed: 4")])])
    assert "Invited: 5" in flow and "Withdrew: 1" in flow and flow.count("<polygon") == 2


def test_the_planning_section_gives_the_cases_the_power_plan_needs(result: AnalysisResult) -> None:
    """The report's "Planning the next study" holds the power plot and, per reader count, the
    cases per reader for 80 % and 90 % power that power.py computes: the dashboard's table."""
    plan = plan_endpoint(result)
    assert plan is not None and plan["available"]
    page = report_html(result)
    section = re.search(r'<section id="planning".*?</section>', page, re.S)
    assert section is not None
    text = section.group(0)
    assert "Planning the next study" in text and "<svg" in text and 'id="plan-needed"' in text
    rows = re.findall(r'<tr><th scope="row">(\d+)</th><td>([^<]+)</td><td>([^<]+)</td></tr>', text)
    expected = [
        (str(row["readers"]), *(str(row[t]) if row[t] is not None else "" for t in ("0.8", "0.9")))
        for row in needed_rows(plan)
    ]
    assert len(rows) == len(expected) >= 5
    for shown, wanted in zip(rows, expected, strict=True):
        assert shown[0] == wanted[0]
        for cell, value in zip(shown[1:], wanted[1:], strict=True):
            assert cell == value or (value == "" and cell.startswith("more than"))
    # Cited: Hillis 2011's power method is in the references.
    assert "10.1016/j.acra.2010.09.007" in page


def test_a_study_too_small_to_plan_from_says_why(result: AnalysisResult) -> None:
    small = copy.deepcopy(result)
    for block in small["statistics"]["or_hillis"].values():
        block["available"] = False
    text = report_html(small)
    assert 'id="plan-unavailable"' in text and 'id="plan-needed"' not in text
