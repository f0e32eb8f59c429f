"""The organiser's wing: everything a study's organisers (and admins) do, one concern a module.

- `studies`: the list of studies, and a new study on the cases of one they run;
- `imports` (the form and the job's page) and `import_jobs` (the import in a process of its own);
- `settings`: a study's settings, opening and closing, its frozen design (`design_freeze`);
- `design`: conditions, design, probes, practice; `team`: who runs the study;
- `invitations`: invitation links; `readers`: progress, reminders, withdrawals; `contact`:
  readers' addresses and what became of the e-mails sent to them;
- `dashboard` (results, from `study_results`), `study_report` and `exports` (the downloads).

Each module has its own blueprint and its own forms; every page lives under /admin, except
the dashboard's under /dashboard.
"""

from flask import Flask

from app.organiser import (
    contact,
    dashboard,
    design,
    imports,
    invitations,
    readers,
    settings,
    studies,
    team,
)

ADMIN_PREFIX = "/admin"


def register(app: Flask) -> None:
    """Register the organiser's blueprints under their URL prefixes."""
    for module in (studies, imports, settings, invitations, readers, team, contact, design):
        app.register_blueprint(module.bp, url_prefix=ADMIN_PREFIX)
    app.register_blueprint(dashboard.bp, url_prefix="/dashboard")
