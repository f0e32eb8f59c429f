"""`/health`: a JSON answer for load balancers and container orchestrators."""

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import csrf, db

bp = Blueprint("health", __name__)


@bp.get("/health")
@csrf.exempt
def health() -> tuple[Response, int]:
    """200 with {"status": "ok"} when the database answers, 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        response = jsonify(status="error", database="unavailable")
        code = 503
    else:
        response = jsonify(status="ok", database="ok")
        code = 200
    response.headers["Cache-Control"] = "no-store"
    return response, code
