"""Study images: served by content-hash name, only to the users of a study that shows them."""

import io
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import Case, Study


def names(app: Flask, study_id: int) -> tuple[str, str, str]:
    """A case's upright and rotated image names and one neighbour image name (no .jpg)."""
    with app.app_context():
        case = db.session.scalars(select(Case).where(Case.study_id == study_id)).first()
        return (
            case.image.removesuffix(".jpg"),
            case.image_rotated.removesuffix(".jpg"),
            case.neighbours[0].image.removesuffix(".jpg"),
        )


def test_reader_of_the_study_gets_its_images(
    client: FlaskClient, app: Flask, study, reader, login
) -> None:
    login(client, reader)
    for name in names(app, study.id):
        response = client.get(f"/images/{name}.jpg")
        assert response.status_code == 200
        assert response.mimetype == "image/jpeg"
        assert response.data.startswith(b"\xff\xd8\xff")
        assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
        assert "Content-Disposition" not in response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_other_study_reader_and_anonymous_get_404(
    client: FlaskClient, app: Flask, study, other_reader, login
) -> None:
    upright, _, neighbour = names(app, study.id)
    assert client.get(f"/images/{upright}.jpg").status_code == 404
    login(client, other_reader)
    assert client.get(f"/images/{upright}.jpg").status_code == 404
    assert client.get(f"/images/{neighbour}.jpg").status_code == 404


def test_staff_see_every_study_image(
    client: FlaskClient, app: Flask, study, other_study, organiser, admin, login
) -> None:
    for user in (organiser, admin):
        login(client, user)
        assert client.get(f"/images/{names(app, other_study.id)[0]}.jpg").status_code == 200
        client.post("/logout")


def test_unknown_or_malformed_names_are_404(client: FlaskClient, study, reader, login) -> None:
    login(client, reader)
    for path in ("/images/" + "0" * 32 + ".jpg", "/images/ISIC_0024306.jpg", "/images/..%2fx.jpg"):
        assert client.get(path).status_code == 404


def test_enrolled_or_invited_only(client: FlaskClient, app: Flask, study, make_user, login) -> None:
    stranger = make_user("stranger@example.org")
    login(client, stranger)
    assert client.get(f"/images/{names(app, study.id)[0]}.jpg").status_code == 404


def test_a_right_sized_copy_for_the_tiles(
    client: FlaskClient, app: Flask, study, reader, other_reader, login
) -> None:
    _, _, neighbour = names(app, study.id)
    with app.app_context():
        folder = Path(db.session.get(Study, study.id).image_folder)
    # A full-size web image (the bundle factory's are tiny), with EXIF that must not travel.
    exif = Image.Exif()
    exif[0x010E] = "ISIC_0024306"  # ImageDescription: an image id
    Image.new("RGB", (450, 338), (200, 120, 90)).save(folder / f"{neighbour}.jpg", exif=exif)
    login(client, reader)
    response = client.get(f"/images/{neighbour}.jpg?w=240")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    with Image.open(io.BytesIO(response.data)) as small:
        assert small.size == (240, 180)
        assert not small.getexif() and b"ISIC" not in response.data
    kept = list((folder / "thumbnails").iterdir())
    assert [path.name for path in kept] == [f"{neighbour}-w240.jpg"]
    assert client.get(f"/images/{neighbour}.jpg?w=240").data == response.data  # made once
    assert client.get(f"/images/{neighbour}.jpg").data != response.data
    for width in ("100", "9999", "x", ""):
        assert client.get(f"/images/{neighbour}.jpg?w={width}").status_code == 404
    client.post("/logout")
    login(client, other_reader)
    assert client.get(f"/images/{neighbour}.jpg?w=240").status_code == 404
