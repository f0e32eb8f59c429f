from collections.abc import Iterable

from wtforms import Field, Form
from wtforms.fields import FileField as _FileField

class FileField(_FileField): ...

class FileAllowed:
    def __init__(self, upload_set: Iterable[str], message: str | None = None) -> None: ...
    def __call__(self, form: Form, field: Field) -> None: ...
