"""The results dashboard of a study (organisers and admins): progress, tables, statistics,
heat maps, the forest plot of every endpoint, the next study's power and the downloads. The
analysis runs once per answer set (`app.organiser.study_results`); the downloads of answers read
them
anew (`exports.response_rows`).

Filters (query string, on the page and every download): `completed=1` keeps readers who
finished both tasks, `reader=<pseudonym>` one reader, `identify=1` adds readers' e-mails,
`pair=<key>~<key>` the two conditions the thesis-layout tables compare (studies of three or
more conditions). The page and its downloads read one analysis per filter set, which holds
the tables of every pair of the study's conditions: the page picks the pair from it
(`with_pair`), and the summary CSV and JSON of `?pair=a~b` hold exactly the figures the
page shows for that pair.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from jinja2 import StrictUndefined
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from app.analysis import confusion_png, confusion_svg, forest_png, forest_svg
from app.analysis import with_pair as pair_view
from app.analysis.plots import power_png, power_svg
from app.analysis.power import MAX_CASES, needed_rows, plan_endpoint
from app.analysis.tables import sides
from app.analysis.wording import FILTERS
from app.auth import managed_study_or_404, staff_required
from app.extensions import db
from app.models import Enrolment, Study, User
from app.organiser.exports import (
    imrmc_text,
    mrmcaov_csv,
    mrmcaov_script,
    reader_emails,
    response_rows,
    responses_csv,
    summary_csv,
    summary_json,
)
from app.organiser.study_report import study_report
from app.organiser.study_results import (
    StudyResult,
    ordered,
    study_pairs,
    study_responses,
    study_result,
)
from app.survey import conditions
from app.survey.designs import Design
from app.survey.enrolment import conditions_of, design_of, session_progress

bp = Blueprint("dashboard", __name__)

# The page's (secondary) bootstrap: moderate and seeded, so that it is fast and the same on
# every view. Downloads use the analysis's default (as `python -m app.analysis`).
PAGE_BOOTSTRAP = 1000
EXPORT_BOOTSTRAP = 2000
TASK_TITLES = {
    1: "Task 1: the lesion alone",
    2: "Task 2: with the retrieved similar images",
}


@dataclass(frozen=True)
class Shown:
    """The pair of conditions that the page's thesis-layout tables (Table 4.II, Figure 4.1,
    answer changes, the secondary statistics) show, as the thesis's Task 1 and Task 2: which
    of the analysis's `pairs` it is, and how the page names it.

    In the thesis's own design they are called so. Otherwise they are named by condition, and
    a study of three or more conditions lets the organiser choose the pair (`keys` None when
    the study has two conditions: there is nothing to choose). `key` is the pair among the
    analysis's `pairs` ("a~b"; None for a one-condition study: the analysis's first two)."""

    keys: tuple[str, str] | None
    key: str | None
    names: dict[int, str]
    titles: dict[int, str]
    choices: list[tuple[str, str]]  # (value of the `pair` argument, words) when there is a choice
    chosen: str


def shown_pair(study: Study, asked: str) -> Shown:
    """The pair the page's tables show: `asked` ("a~b") when it names two of the study's
    conditions, else the first and the last; `unaided` always first, as in the analysis."""
    listed = conditions_of(study)
    if listed == conditions.thesis(study.neighbours_shown or conditions.DEFAULT_K)[:2] and (
        design_of(study) == Design.SEQUENTIAL
    ):
        thesis = f"{listed[0].key}~{listed[1].key}"
        return Shown(None, thesis, {1: "Task 1", 2: "Task 2"}, TASK_TITLES, [], "")
    options = study_pairs(study)
    wanted = tuple(asked.split("~")) if asked else ()
    chosen = next((o for o in options if (o[0].key, o[1].key) == wanted), None)
    first, second = chosen or ordered(listed[0], listed[-1])
    names = {1: first.short, 2: second.short}
    titles = {1: first.label, 2: second.label}
    keys = (first.key, second.key)
    key = f"{first.key}~{second.key}" if first.key != second.key else None
    if len(listed) < 3:
        return Shown(None, key, names, titles, [], "")
    choices = [(f"{a.key}~{b.key}", f"{a.short} and {b.short}") for a, b in options]
    return Shown(keys, key, names, titles, choices, f"{first.key}~{second.key}")


# The figures' downloads: kind (the file's suffix) -> content type
IMAGE_TYPES = {"svg": "image/svg+xml; charset=utf-8", "png": "image/png"}

# Download name -> (file suffix, content type)
EXPORTS = {
    "responses": ("responses.csv", "text/csv; charset=utf-8"),
    "summary-csv": ("summary.csv", "text/csv; charset=utf-8"),
    "summary-json": ("summary.json", "application/json"),
    "imrmc": ("imrmc.imrmc", "text/plain; charset=utf-8"),
    "mrmcaov": ("mrmcaov.csv", "text/csv; charset=utf-8"),
    "mrmcaov-r": ("mrmcaov.R", "text/plain; charset=utf-8"),
}


class Filters:
    """The page's filters, read from the query string (unknown readers are ignored)."""

    def __init__(self, readers: list[str]) -> None:
        args = request.args
        self.completed = args.get("completed") == "1"
        wanted = args.get("reader", "").strip()
        self.reader = wanted if wanted in readers else ""
        self.identify = args.get("identify") == "1"
        self.pair = args.get("pair", "").strip()[:200]

    def query(self) -> dict[str, str]:
        """The filters as query-string arguments (only those that are set)."""
        args = {"completed": "1" if self.completed else "", "reader": self.reader}
        args["identify"] = "1" if self.identify else ""
        args["pair"] = self.pair
        return {key: value for key, value in args.items() if value}

    def rows(self, study: Study, with_probes: bool = False) -> list[dict[str, Any]]:
        """The filtered answers of `study`; misleading-aid probes only when asked for (the
        primary analysis counts them out; the responses export keeps them, marked)."""
        return response_rows(
            study,
            completed_only=self.completed,
            reader=self.reader or None,
            pseudonymise=not self.identify,
            with_probes=with_probes,
        )

    def analysis(self, study: Study, bootstrap: int) -> tuple[Shown, StudyResult]:
        """The pair the thesis-layout tables show, and the analysis of the filtered answers
        (probes left out; computed once per answer set) with that pair's tables at its top
        level: what the page shows, and what its summary downloads hold."""
        pair = shown_pair(study, self.pair)
        analysed = study_result(study, self.completed, self.reader or None, bootstrap)
        return pair, StudyResult(analysed.answers, pair_view(analysed.result, pair.key))


def enrolled_readers(study: Study) -> list[str]:
    """Pseudonyms of the study's enrolled readers, sorted."""
    query = (
        select(User.pseudonym)
        .join(Enrolment, Enrolment.user_id == User.id)
        .where(Enrolment.study_id == study.id)
        .order_by(User.pseudonym)
    )
    return list(db.session.scalars(query))


def reader_progress(study: Study) -> list[dict[str, Any]]:
    """Per enrolled reader: answered and assigned cases, the opening and the end of every task."""
    enrolments = db.session.execute(
        # withdrawn_at is a deferred column: named here, it comes in the same query.
        select(Enrolment, User.pseudonym, User.email, Enrolment.withdrawn_at)
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.study_id == study.id)
        .order_by(User.pseudonym)
    ).all()
    sessions = session_progress(study, [row[0].id for row in enrolments])
    return [
        {
            "reader": pseudonym,
            "email": email,
            "consented_at": enrolment.consented_at,
            "sessions": sessions[enrolment.id],
            "finished_at": enrolment.finished_at,
            "withdrawn_at": withdrawn_at,
        }
        for enrolment, pseudonym, email, withdrawn_at in enrolments
    ]


def heat_rows(result: Mapping[str, Any], task: int) -> list[dict[str, Any]]:
    """The confusion matrix of the pair's Task 1 (its first condition) or Task 2 (its second)
    for the HTML heat map: counts, row shares and a colour step 0-10."""
    key = sides(result["pair"])[task - 1]
    matrix = result["confusion"][key]
    shares = result["confusion"]["row_share"][key]
    return [
        {
            "truth": result["classes"][i],
            "total": sum(counts),
            "cells": [
                {"count": count, "share": share, "step": round(share * 10)}
                for count, share in zip(counts, shares[i], strict=True)
            ],
        }
        for i, counts in enumerate(matrix)
    ]


def render_dashboard(template: str, **context: Any) -> str:
    """render_template, with StrictUndefined when DASHBOARD_STRICT_TEMPLATES is set (tests)."""
    if not current_app.config.get("DASHBOARD_STRICT_TEMPLATES"):
        return render_template(template, **context)
    env = current_app.extensions.get("dashboard_strict_jinja")
    if env is None:
        env = current_app.jinja_env.overlay(undefined=StrictUndefined)
        current_app.extensions["dashboard_strict_jinja"] = env
    current_app.update_template_context(context)
    return env.get_template(template).render(context)


def study_or_404(study_id: int) -> Study:
    """The study if the current user runs it (an admin: any), or 404."""
    return managed_study_or_404(study_id)


@bp.get("/<int:study_id>/")
@staff_required
def index(study_id: int) -> str:
    """The dashboard page of one study."""
    study = study_or_404(study_id)
    readers = enrolled_readers(study)
    filters = Filters(readers)
    bootstrap = current_app.config.get("DASHBOARD_BOOTSTRAP", PAGE_BOOTSTRAP)
    pair, analysed = filters.analysis(study, bootstrap)
    result = analysed.result if analysed.answers else None
    tables = result if result and pair_answered(result) else None
    plan = plan_endpoint(result) if result else None
    return render_dashboard(
        "dashboard/index.html",
        study=study,
        readers=readers,
        filters=filters,
        progress=reader_progress(study),
        answers=analysed.answers,
        result=result,
        tables=tables,
        pair=pair,
        heat={task: heat_rows(tables, task) for task in (1, 2)} if tables else None,
        sides=sides(tables["pair"]) if tables else None,
        plan=plan,
        plan_rows=needed_rows(plan) if plan else [],
        task_titles=pair.titles,
        exports=EXPORTS,
        max_cases=MAX_CASES,
    )


@bp.get("/<int:study_id>/confusion-task<int:task>.<kind>")
@staff_required
def confusion_image(study_id: int, task: int, kind: str) -> Response:
    """A confusion matrix as a heat map like thesis Figure 4.1 (SVG or PNG download)."""
    if task not in (1, 2) or kind not in IMAGE_TYPES:
        raise NotFound()
    study = study_or_404(study_id)
    # The page's analysis (the matrices do not depend on the bootstrap): usually cached.
    bootstrap = current_app.config.get("DASHBOARD_BOOTSTRAP", PAGE_BOOTSTRAP)
    pair, analysed = Filters(enrolled_readers(study)).analysis(study, bootstrap)
    result = analysed.result
    matrix = result["confusion"][sides(result["pair"])[task - 1]]
    title = pair.titles[task]
    if kind == "svg":
        body: str | bytes = confusion_svg(matrix, result["classes"], title)
    else:
        body = confusion_png(matrix, result["classes"], title)
    return download(body, IMAGE_TYPES[kind], file_name(study, f"confusion-task{task}.{kind}", pair))


@bp.get("/<int:study_id>/forest.<kind>")
@staff_required
def forest_image(study_id: int, kind: str) -> Response:
    """The forest plot of every endpoint's differences between conditions, under the page's
    filters: the page shows the SVG, and both download for a paper."""
    if kind not in IMAGE_TYPES:
        raise NotFound()
    study = study_or_404(study_id)
    # The page's own analysis of every condition (OR-Hillis needs no bootstrap): cached.
    bootstrap = current_app.config.get("DASHBOARD_BOOTSTRAP", PAGE_BOOTSTRAP)
    _, analysed = Filters(enrolled_readers(study)).analysis(study, bootstrap)
    result = analysed.result
    body = forest_svg(result) if kind == "svg" else forest_png(result)
    return download(body, IMAGE_TYPES[kind], f"study-{study.id}-forest.{kind}")


@bp.get("/<int:study_id>/report.html")
@staff_required
def report(study_id: int) -> Response:
    """The study report: one self-contained page (flow, methods, results, reliance, time,
    the design's fingerprint) on all the study's answers, to print to PDF or archive.

    Its one inline stylesheet is allowed by its hash, not by 'unsafe-inline'; it loads
    nothing (default-src 'none'), so the saved file is the same page."""
    study = study_or_404(study_id)
    bootstrap = current_app.config.get("DASHBOARD_BOOTSTRAP", PAGE_BOOTSTRAP)
    analysed = study_result(study, False, None, bootstrap)
    page = study_report(study, pair_view(analysed.result))
    response = Response(page.html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {page.style_hash}; img-src data:; "
        "frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<int:study_id>/power.<kind>")
@staff_required
def power_image(study_id: int, kind: str) -> Response:
    """Power against cases per reader for several reader counts, planned from the study's own
    variance components under the page's filters (`?endpoint=` one endpoint; by default the
    first headline endpoint that has them): the page shows the SVG, both download."""
    if kind not in IMAGE_TYPES:
        raise NotFound()
    study = study_or_404(study_id)
    bootstrap = current_app.config.get("DASHBOARD_BOOTSTRAP", PAGE_BOOTSTRAP)
    _, analysed = Filters(enrolled_readers(study)).analysis(study, bootstrap)
    plan = plan_endpoint(analysed.result, request.args.get("endpoint") or None)
    if plan is None:
        raise NotFound()
    body = power_svg(plan) if kind == "svg" else power_png(plan)
    return download(body, IMAGE_TYPES[kind], f"study-{study.id}-power-{plan['endpoint']}.{kind}")


@bp.get("/<int:study_id>/export/<name>")
@staff_required
def export(study_id: int, name: str) -> Response:
    """One of the downloads (responses, summary CSV/JSON, iMRMC, MRMCaov)."""
    if name not in EXPORTS:
        raise NotFound()
    study = study_or_404(study_id)
    filters = Filters(enrolled_readers(study))
    suffix, content_type = EXPORTS[name]
    pair = None
    if name == "responses":
        body = responses_csv(filters.rows(study, with_probes=True))
    elif name in ("imrmc", "mrmcaov", "mrmcaov-r"):
        responses, left_out = study_responses(study, filters.completed, filters.reader or None)
        emails = reader_emails(filters.rows(study)) if filters.identify else None
        if name == "imrmc":
            body = imrmc_text(study, responses, emails)
        elif name == "mrmcaov":
            body = mrmcaov_csv(responses, emails)
        else:
            body = mrmcaov_script(study, left_out)
    else:
        rows = filters.rows(study)
        # The page's analysis under the same filters and pair (bootstrap aside, see above).
        pair, analysed = filters.analysis(study, EXPORT_BOOTSTRAP)
        if name == "summary-csv":
            body = summary_csv(analysed.result, reader_emails(rows))
        else:
            body = summary_json(analysed.result)
    return download(body, content_type, file_name(study, suffix, pair))


def pair_answered(result: Mapping[str, Any]) -> bool:
    """Whether anyone has answered under either condition of the result's pair."""
    pooled = result["pooled"]
    return any(pooled[key]["answers"] for key in sides(result["pair"]))


def file_name(study: Study, suffix: str, pair: Shown | None = None) -> str:
    """A download's file name; with the pair when the organiser chose one, so that the files
    of several pairs do not overwrite each other ("study-3-summary-unaided-vs-cbir.csv")."""
    if pair is None or pair.keys is None:
        return f"study-{study.id}-{suffix}"
    stem, dot, extension = suffix.partition(".")
    first, second = pair.keys
    return f"study-{study.id}-{stem}-{first}-vs-{second}{dot}{extension}"


def download(body: str | bytes, content_type: str, filename: str) -> Response:
    """An attachment that is never cached (results change as readers answer)."""
    response = Response(body, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# The figures' formats (percent, points, pvalue, compared, figure, interval...), from their one
# home, which the study report's pages read too.
for _name, _filter in FILTERS.items():
    bp.add_app_template_filter(_filter, _name)


@bp.app_template_filter("moment")
def moment(value: Any) -> str:
    """A naive-UTC timestamp for the page ('—' when missing)."""
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M") + " UTC"
