"""The survey's blueprint, which `pages` (the reader's way) and `preview` (the organiser's look
at a study as a reader sees it) register their routes on."""

from flask import Blueprint

bp = Blueprint("survey", __name__)
