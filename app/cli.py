"""`flask users ...`, `flask study ...` and `flask demo`: set-up from the command line."""

import hashlib
import hmac
import shutil
from pathlib import Path

import click
from flask import Flask, current_app, url_for
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from app.auth import create_invitation, create_user, end_sessions, normalise_email
from app.bundle import BundleError, copy_study, import_bundle
from app.clock import now
from app.extensions import db
from app.forms import MIN_PASSWORD
from app.leakaudit import AuditError, audit, public_table, served_files
from app.mail.addresses import AddressError, deliverable_address
from app.models import Invitation, Role, Study, StudyStatus, User
from app.organiser.design import (
    PROBE_SENTENCE,
    apply_preset,
    available_aids,
    probes_disclosed,
)
from app.organiser.design_freeze import open_study
from app.organiser.team import add_member
from app.servedimages import key_folder, keyed_folder
from app.survey.designs import Design
from studybundle.vocabulary import Preset

users = AppGroup("users", help="Create accounts and reset passwords.")
study = AppGroup("study", help="Import studies from bundles and invite readers.")

DEMO_STUDY = "Demo study"
DEMO_ADMIN = "admin@demo.local"  # creates organisers: `flask users create --role organiser`
DEMO_ORGANISER = "organiser@demo.local"
DEMO_READERS = ("reader1@demo.local", "reader2@demo.local")
DEMO_THREE_ARM = "Demo three-arm study"
DEMO_THREE_ARM_TEXT = (
    "A demonstration of a counterbalanced three-arm reader study on synthetic images.\n\n"
    "You read the same cases three times, in an order drawn for you: once without help, once"
    " with the most similar images found by plain content-based retrieval (CBIR) and once with"
    " those found by saliency-enhanced retrieval (SE-CBIR). Nothing here is a real patient."
)


def _read_password(password_file: Path | None) -> str:
    """The password from a file (first line), or asked twice on the terminal."""
    if password_file is not None:
        lines = password_file.read_text().splitlines()
        password = lines[0] if lines else ""
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.ClickException(f"The password must have at least {MIN_PASSWORD} characters.")
    return password


def _address(email: str) -> str:
    """The bare, normalised address to store and write to; exits with why it is not one."""
    try:
        return deliverable_address(email.strip())
    except AddressError as problem:
        raise click.ClickException(f"{email!r} is not an e-mail address. {problem}") from None


def _new_user(email: str, role: Role, name: str, password: str | None) -> User:
    """Create a user after checking the address; exits with a message when it is taken."""
    address = _address(email)
    if db.session.scalar(select(User).where(User.email == address)):
        raise click.ClickException(f"A user with the e-mail {address} already exists.")
    user = create_user(address, role, name=name, password=password)
    db.session.commit()
    return user


password_file_option = click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the password from the first line of this file instead of asking.",
)


@users.command("create-admin")
@click.option("--email", required=True)
@click.option("--name", default="")
@password_file_option
def create_admin(email: str, name: str, password_file: Path | None) -> None:
    """Create an administrator (the password is asked, or read from --password-file)."""
    user = _new_user(email, Role.ADMIN, name, _read_password(password_file))
    click.echo(f"Created admin {user.email}.")


@users.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["organiser", "reader"]), required=True)
@click.option("--name", default="")
@password_file_option
@click.option("--no-password", is_flag=True, help="Readers may set theirs from an invitation.")
def create(email: str, role: str, name: str, password_file: Path | None, no_password: bool) -> None:
    """Create an organiser or a reader."""
    password = None if no_password else _read_password(password_file)
    user = _new_user(email, Role(role), name, password)
    click.echo(f"Created {role} {user.email} ({user.pseudonym}).")


@users.command("set-password")
@click.option("--email", required=True)
@password_file_option
def set_password(email: str, password_file: Path | None) -> None:
    """Give an account a new password (one forgotten) and log it out everywhere."""
    user = db.session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise click.ClickException(f"There is no user with the e-mail {email}.")
    user.set_password(_read_password(password_file))
    end_sessions(user)  # a session opened with the old password ends here
    db.session.commit()
    click.echo(f"New password set for {user.email}; their sessions have ended.")


@users.command("set-email")
@click.option("--email", required=True, help="The account's address now.")
@click.option("--new", "new_email", required=True, help="The correct address.")
def set_email(email: str, new_email: str) -> None:
    """Correct an account's e-mail address (its login); the change is recorded."""
    from app.organiser.contact import change_address

    # As stored, too: an address saved with a pasted separator is the one to correct.
    stored = {normalise_email(email), email.strip().lower()}
    user = db.session.scalar(select(User).where(User.email.in_(stored)).limit(1))
    if user is None:
        raise click.ClickException(f"There is no user with the e-mail {email}.")
    try:
        change = change_address(user, new_email, None)
    except AddressError as problem:
        raise click.ClickException(f"The address was not changed: {problem}") from None
    db.session.commit()
    click.echo(f"{change.old_email} is now {change.new_email} ({user.pseudonym}).")


def _organiser(email: str) -> User:
    """The active organiser or admin account with `email`; exits with a message otherwise."""
    user = db.session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not user.is_staff or not user.active:
        raise click.ClickException(f"No active organiser or admin account has the e-mail {email}.")
    return user


@study.command("import")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="The study's name, shown to readers.")
@click.option("--owner", default=None, help="E-mail of the organiser who owns it (else: admins).")
def import_command(bundle: Path, name: str, owner: str | None) -> None:
    """Import the study bundle in folder BUNDLE as a draft study (again: no change)."""
    owner_user = _organiser(owner) if owner else None
    stages: set[str] = set()

    def progress(stage: str, done: int, total: int) -> None:
        """Name each stage once on stderr (the web pages show the counts)."""
        if stage not in stages:
            stages.add(stage)
            click.echo(f"{stage}{f' ({total})' if total else ''}...", err=True)

    try:
        record, created = import_bundle(
            bundle, name, current_app.config["STUDY_IMAGES"], progress=progress
        )
    except BundleError as problem:
        raise click.ClickException(f"The bundle was not imported: {problem}") from None
    if owner_user is not None:
        add_member(record, owner_user, owner=True)
        db.session.commit()
    if created:
        click.echo(f"Imported study {record.id} “{record.name}”: {len(record.cases)} cases.")
    else:
        click.echo(f"Already imported as study {record.id} “{record.name}”: nothing changed.")


@study.command("add-member")
@click.argument("study_id", type=int)
@click.argument("email")
@click.option("--owner", is_flag=True, help="Make them the owner (who manages the team).")
def add_member_command(study_id: int, email: str, owner: bool) -> None:
    """Let the organiser EMAIL run study STUDY_ID (as a collaborator, or --owner)."""
    record = db.session.get(Study, study_id)
    if record is None:
        raise click.ClickException(f"There is no study {study_id}.")
    user = _organiser(email)
    if owner:
        for member in record.members:
            member.owner = False
    add_member(record, user, owner=owner)
    db.session.commit()
    role = "owner" if owner else "collaborator"
    click.echo(f"{user.email} runs study {record.id} “{record.name}” as its {role}.")


@study.command("key-images")
@click.argument("study_id", type=int)
def key_images_command(study_id: int) -> None:
    """Key the images of study STUDY_ID, imported before images were keyed (app.servedimages).

    Its images are written again with this deployment's keyed noise and encoder settings into
    a folder of their own, under the same names; every study on the old folder (its copies)
    moves to the new one, and the old folder is deleted.
    """
    record = db.session.get(Study, study_id)
    if record is None:
        raise click.ClickException(f"There is no study {study_id}.")
    old = Path(record.image_folder)
    if keyed_folder(old) == old:
        click.echo(f"The images of study {record.id} “{record.name}” are keyed already.")
        return
    if not old.is_dir():
        raise click.ClickException(f"The image folder of study {study_id}, {old}, is missing.")
    new = key_folder(old)
    sharing = db.session.scalars(select(Study).where(Study.image_folder == str(old))).all()
    for item in sharing:
        item.image_folder = str(new)
    db.session.commit()
    shutil.rmtree(old, ignore_errors=True)
    ids = ", ".join(str(item.id) for item in sharing)
    click.echo(f"Keyed the images of {old} into {new}, now used by studies {ids}.")


@study.command("audit-leaks")
@click.argument("study_id", type=int)
@click.option(
    "--dataset",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The public images (e.g. HAM10000's folders), named <image id>.jpg.",
)
def audit_leaks_command(study_id: int, dataset: Path) -> None:
    """Play the attacker on study STUDY_ID: how many cases and neighbours the public images
    in DATASET identify from the served files, by exact bytes, size and perceptual hash."""
    record = db.session.get(Study, study_id)
    if record is None:
        raise click.ClickException(f"There is no study {study_id}.")
    click.echo(f"Hashing the public images in {dataset}...", err=True)

    def progress(done: int) -> None:
        """A line every 1000 images (HAM10000's 10,015 take minutes)."""
        if done and done % 1000 == 0:
            click.echo(f"  {done} images", err=True)

    try:
        table = public_table(dataset, int(record.manifest["web_image_size"]), progress)
    except AuditError as problem:
        raise click.ClickException(str(problem)) from None
    result = audit(record, table, served_files(record))
    click.echo(f"Study {record.id} “{record.name}”:")
    for line in result.lines():
        click.echo(line)


@study.command("list")
def list_command() -> None:
    """List the studies."""
    for record in db.session.scalars(select(Study).order_by(Study.id)):
        click.echo(f"{record.id}\t{record.status.value}\t{len(record.cases)} cases\t{record.name}")


def invitation_link(token: str, base_url: str) -> str:
    """The absolute invitation URL for `token` under `base_url`."""
    with current_app.test_request_context(base_url=base_url):
        return url_for("auth.invitation", token=token, _external=True)


@study.command("open")
@with_appcontext
@click.argument("study_id", type=int)
def open_command(study_id: int) -> None:
    """Open study STUDY_ID to its readers (as "Open the study" on its page does)."""
    record = db.session.get(Study, study_id)
    if record is None:
        raise click.ClickException(f"There is no study {study_id}.")
    if not probes_disclosed(record):
        raise click.ClickException(
            "The study was not opened: it shows misleading-aid probes, and its information"
            " text does not tell readers so. Add a sentence such as: " + PROBE_SENTENCE
        )
    frozen = open_study(record)
    db.session.commit()
    click.echo(f"Study {record.id} “{record.name}” is open: invited readers can start.")
    click.echo(f"Its design, frozen at the first opening: SHA-256 {frozen.sha256}")


@study.command("invite")
@click.argument("study_id", type=int)
@click.argument("email")
@click.option("--days", type=int, default=None, help="Days the link stays valid.")
@click.option(
    "--base-url",
    envvar="PUBLIC_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Where readers reach the app (env PUBLIC_URL).",
)
def invite(study_id: int, email: str, days: int | None, base_url: str) -> None:
    """Print a single-use invitation link for EMAIL to study STUDY_ID (shown only now)."""
    record = db.session.get(Study, study_id)
    if record is None:
        raise click.ClickException(f"There is no study {study_id}.")
    address = _address(email)
    if record.status == StudyStatus.DRAFT:
        raise click.ClickException(
            f"Study {study_id} is still a draft: open it first (flask study open {study_id})."
            " A link to a draft study would lead nowhere."
        )
    invitation, token = create_invitation(record, address, days=days)
    db.session.commit()
    until = f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC"
    click.echo(f"Invitation for {invitation.email}, valid until {until}:")
    click.echo(invitation_link(token, base_url))


def demo_password(email: str) -> str:
    """A demo account's password: derived from the instance's secret, so re-runs agree."""
    secret = current_app.config["SECRET_KEY"].encode()
    return "demo-" + hmac.new(secret, email.encode(), hashlib.sha256).hexdigest()[:12]


def _demo_user(email: str, role: Role, name: str) -> User:
    """The demo account `email`, created or reset to its demo password."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = create_user(email, role, name=name)
    user.role = role
    user.active = True
    user.failed_logins = 0
    user.locked_until = None
    user.set_password(demo_password(email))
    return user


@click.command("demo")
@with_appcontext
@click.option(
    "--bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("models/demo/study"),
    show_default=True,
)
@click.option("--cases", type=int, default=20, show_default=True, help="Cases per reader.")
def demo(bundle: Path, cases: int) -> None:
    """Set up the demo: the thesis's replay and a three-arm crossover on the bundle's cases,
    both open (wash-out 0), an organiser and two readers in both."""
    try:
        record, _ = import_bundle(bundle, DEMO_STUDY, current_app.config["STUDY_IMAGES"])
    except BundleError as problem:
        raise click.ClickException(f"The demo bundle was not imported: {problem}") from None
    admin = _demo_user(DEMO_ADMIN, Role.ADMIN, "Demo admin")
    organiser = _demo_user(DEMO_ORGANISER, Role.ORGANISER, "Demo organiser")
    readers = [
        _demo_user(email, Role.READER, f"Demo reader {number}")
        for number, email in enumerate(DEMO_READERS, start=1)
    ]
    db.session.flush()
    if record.created_by_id is None:
        record.created_by_id = organiser.id
    studies = [record]
    three_arm = _demo_three_arm(record, organiser)
    if three_arm is not None:
        studies.append(three_arm)
    for item in studies:
        _open_demo_study(item, organiser, readers, cases)
    db.session.commit()
    for item in studies:
        click.echo(
            f"Demo study {item.id} “{item.name}”: {len(item.cases)} cases,"
            f" {Design(item.design).label.lower()}, open."
        )
    if three_arm is None:
        click.echo("The bundle carries no CBIR neighbours: no three-arm demo study.")
    click.echo("Logins (e-mail / password):")
    for user in (admin, organiser, *readers):
        click.echo(f"  {user.role.value:<9}  {user.email:<22}  {demo_password(user.email)}")
    click.echo(
        "The admin sees every study; new organiser accounts: "
        "flask users create --role organiser --email ADDRESS"
    )


def _demo_three_arm(source: Study, organiser: User) -> Study | None:
    """The demo's second study: the same cases as a counterbalanced three-arm crossover
    (unaided, CBIR, SE-CBIR); None when the bundle has no CBIR lists."""
    found = db.session.scalar(
        select(Study).where(
            Study.bundle_digest == source.bundle_digest, Study.name == DEMO_THREE_ARM
        )
    )
    if found is not None:
        return found
    available = available_aids(source)
    if "cbir" not in available.neighbours:
        return None
    copy = copy_study(source, DEMO_THREE_ARM, organiser)
    apply_preset(copy, Preset.THREE_ARM, available)
    copy.information = DEMO_THREE_ARM_TEXT
    db.session.flush()
    return copy


def _open_demo_study(record: Study, organiser: User, readers: list[User], cases: int) -> None:
    """Make the organiser its owner, open it (the first time) and invite the readers."""
    db.session.flush()
    add_member(record, organiser, owner=True)
    if not db.session.scalar(select(Invitation.id).where(Invitation.study_id == record.id)):
        # Only on the first run: later the organiser's own settings stay as they are.
        record.washout_hours = 0.0
        record.cases_per_reader = max(1, min(cases, len(record.cases)))
        open_study(record)
    for reader in readers:
        joined = db.session.scalar(
            select(Invitation.id).where(
                Invitation.study_id == record.id, Invitation.user_id == reader.id
            )
        )
        if joined is None:
            invitation, _ = create_invitation(record, reader.email, organiser)
            invitation.used_at = now()
            invitation.user_id = reader.id


def register(app: Flask) -> None:
    """Add the command groups to `app`'s `flask` command."""
    from app.backup import backup_command, restore_command
    from app.mail.cli import group as mail_group

    app.cli.add_command(users)
    app.cli.add_command(study)
    app.cli.add_command(demo)
    app.cli.add_command(mail_group)  # flask mail send-queued | test ADDRESS | status | requeue
    app.cli.add_command(backup_command)  # flask db-backup FILE
    app.cli.add_command(restore_command)  # flask db-restore FILE [--force]
