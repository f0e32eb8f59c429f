"""Reaching readers (issue 24): correcting an address (who may, the record, the login after),
each invitation's and reminder's delivery with "send now", mail sent right after the request
that queued it, and a mail server that is down losing nothing."""

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from app.extensions import db
from app.models import AddressChange, Invitation, MailStatus, OutboxMessage, Study, User
from tests.app.conftest import PASSWORD, StudyRef, UserRef, join_study
from tests.app.reading import consent, enrolment_id
from tests.app.smtp import SmtpServer, free_port


def stored_as(app: Flask, user: UserRef, email: str) -> UserRef:
    """The user's address stored exactly as `email`, as the app once stored pasted addresses."""
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row is not None
        row.email = email
        db.session.commit()
    return UserRef(user.id, email, user.password, user.role, user.pseudonym)


def stored_email(app: Flask, user: UserRef) -> str:
    """The user's address as stored now."""
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row is not None
        return row.email


def enrolled(app: Flask, reader: UserRef, study: StudyRef, login: Callable) -> int:
    """The reader consents in `study`; their enrolment's id."""
    client = app.test_client()
    login(client, reader)
    consent(client, study.id)
    return enrolment_id(app, reader)


def test_an_organiser_corrects_a_readers_address_and_the_reader_logs_in_with_it(
    app: Flask, study: StudyRef, organiser: UserRef, make_user: Callable, login: Callable
) -> None:
    # The walk's reader: stored with the comma of a pasted list (before addresses were checked).
    reader = make_user("derm.c@clinic.example")
    join_study(app, reader, study)
    enrolment = enrolled(app, reader, study, login)
    reader = stored_as(app, reader, "derm.c@clinic.example,")
    staff = app.test_client()
    login(staff, organiser)
    readers = staff.get(f"/admin/studies/{study.id}/readers").text
    url = f"/admin/studies/{study.id}/readers/{enrolment}/address"
    assert url in readers
    refused = staff.post(url, data={"email": "not an address"})
    assert refused.status_code == 400 and stored_email(app, reader) == "derm.c@clinic.example,"
    done = staff.post(url, data={"email": "Dr C <Derm.C@Clinic.example>"})
    assert done.status_code == 303
    assert stored_email(app, reader) == "derm.c@clinic.example"
    with app.app_context():
        (change,) = db.session.scalars(select(AddressChange)).all()
        assert (change.old_email, change.new_email) == (
            "derm.c@clinic.example,",
            "derm.c@clinic.example",
        )
        assert change.changed_by_id == organiser.id and change.user_id == reader.id
        # The used invitation follows the account.
        assert db.session.scalar(
            select(Invitation.email).where(Invitation.user_id == reader.id)
        ) == ("derm.c@clinic.example")
    fresh = app.test_client()
    answer = fresh.post("/login", data={"email": "derm.c@clinic.example", "password": PASSWORD})
    assert answer.status_code == 302 and "/survey/" in answer.location
    # Another account's address is refused, and named as the reason.
    make_user("taken@example.org")
    taken = staff.post(url, data={"email": "taken@example.org"})
    assert taken.status_code == 400 and "Another account has this address" in taken.text


def test_only_organisers_of_every_study_of_the_reader_may_correct_it(
    app: Flask,
    study: StudyRef,
    other_study: StudyRef,
    organiser: UserRef,
    other_organiser: UserRef,
    admin: UserRef,
    reader: UserRef,
    login: Callable,
) -> None:
    enrolment = enrolled(app, reader, study, login)
    with app.app_context():
        # The organiser runs the first study only; the reader is also in the other one.
        from app.organiser.team import add_member

        other = db.session.get(Study, other_study.id)
        for member in list(other.members):
            db.session.delete(member)
        add_member(other, db.session.get(User, other_organiser.id), owner=True)
        db.session.commit()
    join_study(app, reader, other_study)
    staff = app.test_client()
    login(staff, organiser)
    url = f"/admin/studies/{study.id}/readers/{enrolment}/address"
    page = staff.get(url)
    assert page.status_code == 200 and 'id="not-allowed"' in page.text
    assert staff.post(url, data={"email": "new@example.org"}).status_code == 403
    assert stored_email(app, reader) == reader.email
    assert url not in staff.get(f"/admin/studies/{study.id}/readers").text
    boss = app.test_client()
    login(boss, admin)
    assert boss.post(url, data={"email": "new@example.org"}).status_code == 303
    assert stored_email(app, reader) == "new@example.org"


def test_the_command_corrects_an_address_and_records_it(
    app: Flask, runner: FlaskCliRunner, make_user: Callable
) -> None:
    stored_as(app, make_user("wrong@example.org"), "wrong@example.org;")
    result = runner.invoke(
        args=["users", "set-email", "--email", "wrong@example.org;", "--new", "right@example.org"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(User.email)) == "right@example.org"
        assert db.session.scalar(select(AddressChange.changed_by_id)) is None
    bad = runner.invoke(args=["users", "set-email", "--email", "right@example.org", "--new", "x"])
    assert bad.exit_code == 1 and "not changed" in bad.output


def test_an_invitation_goes_out_right_after_the_request_with_its_delivery_shown(
    app: Flask, smtp: SmtpServer, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    app.config["MAIL_SEND_AFTER_REQUEST"] = True
    staff = app.test_client()
    login(staff, organiser)
    url = f"/admin/studies/{study.id}/invitations"
    made = staff.post(url, data={"email": "Jane <jane@example.org>,", "days": "7", "send": "y"})
    assert made.status_code == 200
    assert smtp.sink.messages == []  # not before the response has gone out...
    made.close()  # ...which a WSGI server signals by closing it, as here
    # No `flask mail send-queued`: the request's own after-response step sent it.
    assert [m["To"] for m in smtp.sink.messages] == ["jane@example.org"]
    listing = staff.get(url).text
    assert "badge-mail-sent" in listing and ">sent<" in listing


def test_a_server_that_is_down_loses_nothing_and_send_now_sends_it_later(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    from app.extensions import mail
    from tests.app.smtp import smtp_server

    port = free_port()  # nothing listens here yet
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_SEND_AFTER_REQUEST=True)
    mail.init_app(app)
    staff = app.test_client()
    login(staff, organiser)
    url = f"/admin/studies/{study.id}/invitations"
    made = staff.post(url, data={"email": "bob@example.org", "days": "7", "send": "y"})
    assert made.status_code == 200
    made.close()  # the response is out: the app tries the server, which is not there
    with app.app_context():
        message = db.session.scalars(select(OutboxMessage)).one()
        assert message.status == MailStatus.PENDING and message.attempts == 1  # kept, to retry
        assert message.last_error
        message_id = message.id
    listing = staff.get(url).text
    assert "badge-mail-retrying" in listing and "Send now" in listing
    with smtp_server(port) as server:
        sent = staff.post(f"/admin/studies/{study.id}/mail/{message_id}/send")
        assert sent.status_code == 303
        assert [m["To"] for m in server.sink.messages] == ["bob@example.org"]
    with app.app_context():
        assert db.session.get(OutboxMessage, message_id).status == MailStatus.SENT


def test_a_corrected_invitation_gets_a_new_link_and_the_old_mail_is_not_sent(
    app: Flask, smtp: SmtpServer, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    from app.mail import send_queued

    staff = app.test_client()
    login(staff, organiser)
    listing = f"/admin/studies/{study.id}/invitations"
    staff.post(listing, data={"email": "jnae@example.org", "days": "7", "send": "y"})
    with app.app_context():
        invitation_id = db.session.scalar(select(Invitation.id))
    fixed = staff.post(
        f"/admin/studies/{study.id}/invitations/{invitation_id}/address",
        data={"email": "jane@example.org"},
    )
    assert fixed.status_code == 200 and 'id="corrected-link"' in fixed.text
    with app.app_context():
        report = send_queued()
        assert len(report.sent) == 1 and len(report.not_sent) == 1
        old = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
        assert old.recipient == "jnae@example.org" and "newer link" in (old.last_error or "")
    assert [m["To"] for m in smtp.sink.messages] == ["jane@example.org"]
    assert "not sent" in staff.get(listing).text or ">sent<" in staff.get(listing).text


def test_several_addresses_on_a_line_as_mail_programs_copy_them(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    from app.mail.addresses import pasted_entries

    assert pasted_entries("Doe, Jane <jane@x.org>; Smith, Bob <bob@y.org>;") == [
        '"Doe, Jane" <jane@x.org>',
        '"Smith, Bob" <bob@y.org>',
    ]
    assert pasted_entries("x@evil.example,foo") == ["x@evil.example", "foo"]  # "foo" refused
    staff = app.test_client()
    login(staff, organiser)
    url = f"/admin/studies/{study.id}/invitations"
    pasted = "Doe, Jane <Jane@X.org>; Smith, Bob <bob@y.org>\nann@z.org, derm.c@clinic.example,"
    assert staff.post(url, data={"email": pasted, "days": "7"}).status_code == 200
    with app.app_context():
        made = list(db.session.scalars(select(Invitation.email).order_by(Invitation.id)))
    assert made == ["jane@x.org", "bob@y.org", "ann@z.org", "derm.c@clinic.example"]


def test_a_login_with_the_separator_pasted_along_still_finds_the_account(
    app: Flask, reader: UserRef
) -> None:
    client = app.test_client()
    answer = client.post("/login", data={"email": f" {reader.email}, ", "password": PASSWORD})
    assert answer.status_code == 302
