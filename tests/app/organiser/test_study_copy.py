"""A second study on the same cases: an organiser copies a study into a new draft.

The copy has the source's cases, taxonomy, aids, texts and design, shares its images, and
none of its readers, invitations, answers or team; its design changes freely until its own
first reader enrols. Importing the bundle again still returns the first study.
"""

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.bundle import import_bundle
from app.extensions import db
from app.models import Answer, Case, Enrolment, Invitation, Role, Study, StudyMember, StudyStatus
from tests.app.conftest import StudyRef, UserRef, add_user, join_study
from tests.app.reading import answer_case, consent


def neighbour_lists(study: Study) -> list[list[tuple[str, int, str, str]]]:
    """Every case's neighbours as (aid, rank, image id, served name), case by case."""
    return [
        [(n.aid, n.rank, n.image_id, n.image) for n in sorted(c.neighbours, key=lambda n: n.id)]
        for c in study.cases
    ]


def test_an_organiser_copies_a_running_study_into_a_new_draft_on_the_same_cases(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    organiser: UserRef,
    login: Callable,
    bundle_cache: dict[int, Path],
) -> None:
    reader = add_user(app, "first@example.org", Role.READER)
    join_study(app, reader, study)
    reader_client = app.test_client()
    login(reader_client, reader)
    consent(reader_client, study.id)
    answer_case(reader_client, study.id, 1, 1)

    login(client, organiser)
    response = client.post(f"/admin/studies/{study.id}/copy", data={"name": "Second design"})
    assert response.status_code == 303
    copy_id = int(response.headers["Location"].split("/")[-2])
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "is a new draft study on the same 30 cases" in page

    with app.app_context():
        source = db.session.get_one(Study, study.id)
        copy = db.session.get_one(Study, copy_id)
        assert copy.id != source.id and copy.name == "Second design"
        assert copy.status == StudyStatus.DRAFT
        assert (copy.bundle_digest, copy.image_folder) == (
            source.bundle_digest,
            source.image_folder,
        )
        assert (copy.information, copy.design, copy.conditions) == (
            source.information,
            source.design,
            source.conditions,
        )
        assert [(c.code, c.name, c.malignant) for c in copy.classes] == [
            (c.code, c.name, c.malignant) for c in source.classes
        ]
        assert [(c.case_key, c.truth, c.image, c.votes) for c in copy.cases] == [
            (c.case_key, c.truth, c.image, c.votes) for c in source.cases
        ]
        assert neighbour_lists(copy) == neighbour_lists(source)
        assert {c.study_id for c in copy.cases} == {copy.id}
        for table in (Enrolment, Invitation):
            count = select(func.count()).select_from(table).where(table.study_id == copy.id)
            assert db.session.scalar(count) == 0
        members = db.session.scalars(select(StudyMember).where(StudyMember.study_id == copy.id))
        assert [(m.user_id, m.owner) for m in members] == [(organiser.id, True)]
        # The source keeps everything; the same bundle imported again is still the source.
        assert db.session.scalar(select(func.count(Answer.id))) == 1
        again, created = import_bundle(bundle_cache[0], "Again", app.config["STUDY_IMAGES"])
        assert (again.id, created) == (source.id, False)
        copy.status = StudyStatus.OPEN
        copy.washout_hours = 0
        copy.cases_per_reader = 2
        db.session.commit()

    # The source's design is locked (a reader enrolled), the copy's is not.
    form = {"design": "per_case", "conditions-0-aid": "unaided", "conditions-1-aid": "se_cbir"}
    form |= {"conditions-1-k": "6", "conditions-1-labelled": "y", "probe_share": "0"}
    assert client.post(f"/admin/studies/{copy_id}/design", data=form).status_code == 303
    with app.app_context():
        assert db.session.get_one(Study, copy_id).design == "per_case"
        assert db.session.get_one(Study, study.id).design == "sequential"

    # A reader of the copy reads its cases, whose images are the source's files.
    second = add_user(app, "second@example.org", Role.READER)
    join_study(app, second, StudyRef(copy_id, "Second design", "", "", 30))
    other = app.test_client()
    login(other, second)
    consent(other, copy_id)
    html = answer_case(other, copy_id, 1, 1)
    image = html.split("data-query-image")[0].rsplit('src="', 1)[1].split('"')[0]
    assert other.get(image).status_code == 200
    with app.app_context():
        case_ids = db.session.scalars(
            select(Case.id).join(Answer.assignment).join(Case).where(Case.study_id == copy_id)
        ).all()
        assert len(case_ids) == 1


def test_an_organiser_of_another_study_cannot_copy_it_and_a_nameless_copy_is_refused(
    app: Flask, client: FlaskClient, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    stranger = add_user(app, "stranger@example.org", Role.ORGANISER)
    login(client, stranger)
    assert client.post(f"/admin/studies/{study.id}/copy", data={"name": "Mine"}).status_code == 404
    client = app.test_client()
    login(client, organiser)
    response = client.post(f"/admin/studies/{study.id}/copy", data={"name": "  "})
    assert response.status_code == 303
    assert "Give the new study a name" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.scalar(select(func.count(Study.id))) == 1
