"""Importing a study bundle from the browser: the form, then the job's progress and outcome.

The import itself runs in a process of its own (app.organiser.import_jobs)."""

from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField, SubmitField

# WTForms 3.3 added SelectChoice; typeshed's types-WTForms (3.2.1) does not have it yet.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import DataRequired, Length, ValidationError

from app.auth import refuse_control_characters, staff_required
from app.extensions import db
from app.models import UNFINISHED, ImportJob, Study
from app.organiser import import_jobs

bp = Blueprint("imports", __name__)

# Sent by the import progress page's script when it asks whether the import has finished.
POLL_HEADER = "X-Import-Poll"


class ImportBundleForm(FlaskForm):
    """A study's name and its bundle: an uploaded .zip or a folder on the server."""

    name = StringField("Study name", validators=[DataRequired(), Length(max=200)])
    upload = FileField(
        "Bundle (.zip)", validators=[FileAllowed(["zip"], "Upload a .zip of the bundle folder.")]
    )
    # Checked in the view: the folder must be one of those offered under BUNDLE_ROOT.
    server_path = SelectField(
        "…or a bundle folder on the server", choices=[], default="", validate_choice=False
    )
    submit = SubmitField("Import")

    def validate_upload(self, field: FileField) -> None:
        """Exactly one source: an upload or a server folder."""
        has_upload = bool(field.data and getattr(field.data, "filename", ""))
        if has_upload == bool(self.server_path.data):
            raise ValidationError("Upload a .zip or choose a server folder (one of the two).")


def server_bundles() -> list[tuple[str, str]]:
    """Bundle folders under BUNDLE_ROOT (up to two levels down), as form choices.

    Only folders reached without a symbolic link: a link could lead outside the root (and
    the validator's messages quote what they read). The validator refuses linked files in
    a bundle.
    """
    root_setting = current_app.config.get("BUNDLE_ROOT")
    if not root_setting or not Path(root_setting).is_dir():
        return []
    root = Path(root_setting).resolve()
    found = sorted(
        {
            path.parent
            for pattern in ("*/manifest.json", "*/*/manifest.json")
            for path in root.glob(pattern)
            if path.parent.resolve() == path.parent
        }
    )
    return [(str(path.relative_to(root)), str(path.relative_to(root))) for path in found]


def import_form() -> tuple[ImportBundleForm, list[tuple[str, str]]]:
    """The import form with the server's bundle folders offered."""
    form = ImportBundleForm()
    offered = server_bundles()
    form.server_path.choices = [SelectChoice("", "(none)")] + [
        SelectChoice(value, label) for value, label in offered
    ]
    return form, offered


@bp.route("/studies/import", methods=["GET", "POST"])
@staff_required
def import_study() -> Response | str | tuple[str, int]:
    """Create a study from a bundle: an uploaded .zip or a folder under BUNDLE_ROOT.

    The import runs in the background, in a process of its own (app.organiser.import_jobs);
    the browser goes to its progress page.
    """
    form, offered = import_form()
    if not form.validate_on_submit() or refuse_control_characters(form):
        status = 400 if form.is_submitted() else 200
        return render_template("admin/import.html", form=form), status
    folder = None
    if form.server_path.data:
        if form.server_path.data not in dict(offered):
            abort(400)
        folder = Path(current_app.config["BUNDLE_ROOT"]).resolve() / form.server_path.data
    user = current_user._get_current_object()
    upload = None if folder is not None else form.upload.data.stream
    try:
        job = import_jobs.start(user, form.name.data or "", upload, folder)
    except import_jobs.Busy as busy:
        form.upload.errors = [*form.upload.errors, str(busy)]
        return render_template("admin/import.html", form=form), 429
    if job.state in UNFINISHED:
        return redirect(url_for("imports.import_job", job_id=job.id), 303)
    return import_outcome(job)


def import_outcome(job: ImportJob) -> Response | tuple[str, int]:
    """What a finished import shows: its study, or the import form with why it failed."""
    if job.state == "done" and job.study_id is not None:
        study = db.get_or_404(Study, job.study_id)
        if job.created_study:
            flash(f"Imported “{study.name}” with {len(study.cases)} cases.", "success")
        else:
            flash(
                f"This bundle was imported before, as “{study.name}”: nothing changed. To run "
                "its cases again, choose New study on the studies page.",
                "info",
            )
        return redirect(url_for("settings.study", study_id=study.id))
    form, _ = import_form()
    form.name.data = job.name
    form.upload.errors = [*form.upload.errors, job.errors or "The import failed."]
    return render_template("admin/import.html", form=form), 409 if job.state == "conflict" else 400


@bp.get("/imports/<int:job_id>")
@staff_required
def import_job(job_id: int) -> Response | str | tuple[str, int]:
    """An import's progress (the page reloads itself), then its outcome.

    Only whoever started it (or an admin) sees it; another job answers 404.
    """
    job = db.session.get(ImportJob, job_id)
    if job is None or not (job.created_by_id == current_user.id or current_user.is_admin):
        abort(404)
    import_jobs.settle()
    db.session.refresh(job)
    if job.state in UNFINISHED:
        return render_template("admin/import_progress.html", job=job)
    if request.headers.get(POLL_HEADER):
        # The progress page's own look (static/js/importprogress.js): it reloads, and the
        # outcome and its message are shown once, then.
        return Response(status=204)
    return import_outcome(job)
