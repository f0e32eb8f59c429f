# Flask-Login 0.6.3: the names app/ uses (stubs/README.md says why these stubs exist).
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from blinker import NamedSignal
from flask import Flask

_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C", bound=Callable[..., Any])

class UserMixin:
    __hash__: Any
    @property
    def is_active(self) -> bool: ...
    @property
    def is_authenticated(self) -> bool: ...
    @property
    def is_anonymous(self) -> bool: ...
    def get_id(self) -> str: ...

class AnonymousUserMixin:
    @property
    def is_authenticated(self) -> bool: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def is_anonymous(self) -> bool: ...
    def get_id(self) -> None: ...

class LoginManager:
    anonymous_user: type[Any]
    login_view: str | None
    login_message: str
    login_message_category: str
    session_protection: str | None
    def __init__(self, app: Flask | None = None, add_context_processor: bool = True) -> None: ...
    def init_app(self, app: Flask, add_context_processor: bool = True) -> None: ...
    def user_loader(self, callback: _C) -> _C: ...
    def unauthorized_handler(self, callback: _C) -> _C: ...

# A proxy to the signed-in user (the app's User) or to the anonymous user: what it stands for
# is only known per request, so it is typed as Flask-Login's untyped proxy gives it.
current_user: Any

def login_required(func: _F) -> _F: ...
def login_user(
    user: Any,
    remember: bool = False,
    duration: timedelta | None = None,
    force: bool = False,
    fresh: bool = True,
) -> bool: ...
def logout_user() -> bool: ...
def login_url(login_view: str, next_url: str | None = None, next_field: str = "next") -> str: ...

user_logged_in: NamedSignal
user_logged_out: NamedSignal
