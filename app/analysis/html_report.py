"""The study report: one self-contained HTML page a journal takes, that prints to PDF.

From an analysis result, the study's design and its flow counts: the flow diagram of readers
and cases (as CONSORT and STARD ask), the methods written from the design (`methods.py`), the
results (the headline, every endpoint's table and the forest plot), the reliance and timing
figures, and the design's fingerprint. Everything is inline (the CSS in one <style>, the
figures as SVG), so that the file opens, prints and archives with no server and no network;
the only addresses in it are the references' links. Pure: no Flask, no database. The page is
rendered by Jinja from `templates/report/study.html`, with the dashboard's endpoint table and
filters (`templates/dashboard/_macros.html`, `wording.FILTERS`): one home for each.

The dashboard serves the page under a Content-Security-Policy that allows its one <style>
by hash (`Report.style_hash`), not every inline style.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from app.analysis.fingerprint import fingerprint
from app.analysis.methods import HILLIS_2007, HILLIS_2011, cite, methods
from app.analysis.plots import (
    FlowStep,
    flow_svg,
    forest_svg,
    power_svg,
    reliance_svg,
    timing_svg,
)
from app.analysis.power import MAX_CASES, needed_rows, plan_endpoint
from app.analysis.wording import FILTERS

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
STYLESHEET = TEMPLATES / "report" / "report.css"
NOT_KNOWN = "not known from a responses file"


@dataclass(frozen=True)
class Flow:
    """The counts of the flow diagram; None where the source cannot tell (a responses file
    knows the readers and cases in it, not who was invited or what the pool held)."""

    analysed: int
    left_out: list[Mapping[str, str]]  # readers with answers but left out, and why
    cases_shown: int  # cases read by at least one reader
    cases_analysed: int  # cases in the analysis (of the readers analysed)
    probes: int  # faulty-aid probe readings, analysed apart
    invited: int | None = None
    enrolled: int | None = None
    withdrawn: int | None = None
    completed: int | None = None
    pool: int | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of_result(cls, result: Mapping[str, Any], design: Mapping[str, Any] | None) -> Flow:
        """What a responses file (and a design, when given) tells of the flow."""
        pool = None if design is None else design.get("cases", {}).get("pool")
        notes = [
            "Made from a responses file: it holds the readers who answered and the cases "
            "they answered, not how many readers were invited, enrolled, withdrew or "
            "completed the study"
            + ("." if pool is not None else ", nor how many cases the pool held.")
        ]
        return cls(
            analysed=result["pooled"]["readers"],
            left_out=list(result["left_out"]["readers"]),
            cases_shown=result["pooled"]["images"],
            cases_analysed=result["pooled"]["images"],
            probes=result["probes_left_out"],
            pool=pool,
            notes=notes,
        )


@dataclass(frozen=True)
class Registration:
    """The design the report holds and its fingerprint: frozen when the study opened (the
    dashboard), read from a design.json (the command line), or neither."""

    design: Mapping[str, Any] | None
    sha256: str | None
    source: str  # in words: where the design and its hash come from
    frozen_at: str | None = None
    intact: bool = True  # the design still hashes to the registered SHA-256
    changed: list[str] = field(default_factory=list)  # what differs now from the frozen one

    @classmethod
    def of_document(cls, document: Mapping[str, Any], source: str) -> Registration:
        """From a `design.json` (the dashboard's download: the design under "design" with its
        "sha256") or a bare design; ValueError when it holds no design."""
        design = document.get("design") if "design" in document and "sha256" in document else None
        if design is None and "conditions" in document and "cases" in document:
            design = document
        if not isinstance(design, Mapping):
            raise ValueError(
                "no design in it: expected the study's design.json (with 'design' and "
                "'sha256') or a design with 'conditions' and 'cases'"
            )
        computed = fingerprint(design)
        registered = document.get("sha256", computed)
        return cls(
            design=design,
            sha256=computed,
            source=source,
            frozen_at=document.get("frozen_at"),
            intact=registered == computed,
            changed=list(document.get("changed_since", [])),
        )


@dataclass(frozen=True)
class Report:
    """The report's HTML and the CSP source that allows its one inline stylesheet."""

    html: str
    style_hash: str  # "'sha256-…'", for a Content-Security-Policy's style-src


def stylesheet() -> str:
    """The report's CSS, as it stands inside the page's <style>."""
    return STYLESHEET.read_text(encoding="utf-8")


def style_hash(css: str) -> str:
    """The CSP hash source of an inline stylesheet: base64 of SHA-256 of its exact text."""
    digest = hashlib.sha256(css.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Jinja over the app's templates, escaping HTML, with the dashboard's filters."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def _count(value: int | None, noun: str) -> str:
    """ "12 readers", or what the source cannot tell."""
    return f"{noun}: {NOT_KNOWN}" if value is None else f"{noun}: {value}"


def flow_columns(flow: Flow) -> list[tuple[str, list[FlowStep]]]:
    """The flow diagram's two columns: readers from the invitation to the analysis, cases from
    the pool to the analysis, with who and what left the line beside it."""
    left_out = len(flow.left_out)
    reasons = "; ".join(f"{item['reader']}: {item['reason']}" for item in flow.left_out[:3])
    if left_out > 3:
        reasons += "; …"
    readers = [
        FlowStep(_count(flow.invited, "Readers invited")),
        FlowStep(
            _count(flow.enrolled, "Enrolled (consented)"),
            None if flow.withdrawn is None else f"Withdrew: {flow.withdrawn}",
        ),
        FlowStep(
            _count(flow.completed, "Completed every session"),
            f"Left out of the analysis: {left_out}" + (f" ({reasons})" if reasons else ""),
        ),
        FlowStep(f"Readers analysed: {flow.analysed}"),
    ]
    not_shown = None if flow.pool is None else max(flow.pool - flow.cases_shown, 0)
    cases = [
        FlowStep(
            _count(flow.pool, "Cases in the pool"),
            None if not_shown is None else f"Never shown (not drawn for any reader): {not_shown}",
        ),
        FlowStep(
            f"Cases read: {flow.cases_shown}",
            f"Faulty-aid probe readings, analysed apart: {flow.probes}",
        ),
        FlowStep(f"Cases analysed: {flow.cases_analysed}"),
    ]
    return [("Readers", readers), ("Cases", cases)]


def render_report(
    result: Mapping[str, Any],
    registration: Registration,
    flow: Flow,
    title: str,
    generated: str = "",
) -> Report:
    """The study report of `result` as one self-contained HTML page (see the module)."""
    css = stylesheet()
    sections = methods(result, registration.design)
    blocks = result["statistics"]["or_hillis"]
    has_forest = any(block["available"] and block["differences"] for block in blocks.values())
    plan = plan_endpoint(result)
    html = (
        environment()
        .get_template("report/study.html")
        .render(
            title=title,
            generated=generated,
            css=Markup(css),  # our own file, never user input
            result=result,
            flow=flow,
            flow_figure=Markup(flow_svg(flow_columns(flow))),
            methods=sections,
            forest=Markup(forest_svg(result)) if has_forest else None,
            reliance=Markup(reliance_svg(result)),
            timing=Markup(timing_svg(result)),
            registration=registration,
            design_json=_pretty(registration.design),
            plan=plan,
            plan_rows=needed_rows(plan) if plan else [],
            power_figure=Markup(power_svg(plan)) if plan and plan["available"] else None,
            max_cases=MAX_CASES,
            planning_cite=cite(HILLIS_2007, HILLIS_2011),
        )
    )
    return Report(html, style_hash(css))


def _pretty(design: Mapping[str, Any] | None) -> str:
    """The design as indented JSON for the appendix ('' without one)."""
    return "" if design is None else json.dumps(design, indent=2, ensure_ascii=False)
