"""What a reader's pages must not reveal: recorded responses and the checks run over them (shared
by the survey and design leak tests)."""

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.extensions import db
from app.models import Case, Neighbour
from tests.app.conftest import StudyRef

IMAGE_URL = re.compile(r"/images/([0-9a-f]{32})\.jpg(?:\?w=\d+)?")


NEIGHBOURS = re.compile(r'<section class="neighbours".*?</section>', re.S)


def mask(html: str) -> str:
    """A page with what may differ between cases masked: image names, numbers, tokens."""
    html = IMAGE_URL.sub("/images/IMAGE.jpg", html)
    # The case token and the CSRF tokens (signed with a timestamp) change on every page.
    html = re.sub(r'<input[^>]*name="(csrf_)?token"[^>]*>', "<input TOKEN>", html)
    return re.sub(r"\d+", "N", html)


def secrets_of(app: Flask, study: StudyRef) -> set[str]:
    """Every id that must never reach a reader: cases' and neighbours' image and lesion ids."""
    with app.app_context():
        cases = db.session.scalars(select(Case).where(Case.study_id == study.id)).all()
        found = {c.image_id for c in cases} | {c.lesion_id for c in cases}
        for case in cases:
            found |= {n.image_id for n in case.neighbours} | {n.lesion_id for n in case.neighbours}
        return found


class Recorder:
    """Keeps every response a reader's client receives."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.responses: list[tuple[str, TestResponse]] = []

    def get(self, url: str) -> TestResponse:
        """GET and record."""
        response = self.client.get(url)
        self.responses.append((url, response))
        return response

    def post(self, url: str, data: dict) -> TestResponse:
        """POST and record."""
        response = self.client.post(url, data=data)
        self.responses.append((url, response))
        return response


def check_no_ids_anywhere(app: Flask, study: StudyRef, walk: dict) -> None:
    """No image or lesion id in any URL, page or header."""
    secret = secrets_of(app, study)
    assert len(walk["responses"]) > 50
    for url, response in walk["responses"]:
        assert response.status_code in (200, 302, 303, 400), (url, response.status_code)
        text = response.get_data(as_text=True)
        headers = str(response.headers)
        for haystack in (url, text, headers):
            assert "ISIC_" not in haystack and "HAM_" not in haystack, url
            leaked = [s for s in secret if s in haystack]
            assert not leaked, (url, leaked)


def check_images_are_named_by_content_hash(app: Flask, walk: dict, client: FlaskClient) -> None:
    """Every <img> points at a study image by its content-hash name."""
    with app.app_context():
        names = set(db.session.scalars(select(Case.image)).all())
        names |= set(db.session.scalars(select(Case.image_rotated)).all())
        names |= set(db.session.scalars(select(Neighbour.image)).all())
        # The saliency overlays (format 2), in data-saliency-src beside the case's src.
        names |= set(db.session.scalars(select(Case.saliency)).all())
        names |= set(db.session.scalars(select(Case.saliency_rotated)).all())
    shown = set()
    for _, response in walk["responses"]:
        text = response.get_data(as_text=True)
        tags = re.findall(r"<img\b[^>]*>", text)
        for src in (url for tag in tags for url in re.findall(r'[\s-]src="([^"]*)"', tag)):
            match = IMAGE_URL.fullmatch(src)
            assert match, src
            shown.add(match.group(1) + ".jpg")
    assert shown and shown <= names
    for name in sorted(shown)[:5]:
        image = client.get("/images/" + name)
        assert image.status_code == 200 and image.mimetype == "image/jpeg"
        assert "ISIC_" not in str(image.headers) and "HAM_" not in str(image.headers)


def check_no_inline_script_or_style(walk: dict) -> None:
    """The CSP forbids inline script; the pages need none (and no inline styles)."""
    for url, response in walk["responses"]:
        if response.mimetype != "text/html":
            continue
        html = response.get_data(as_text=True)
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (url, tag)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), url
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url
