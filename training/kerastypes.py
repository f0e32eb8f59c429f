"""Names for Keras objects in type hints: Any, because Keras ships no type information.

TensorFlow and Keras have no py.typed marker (and types-tensorflow lags TensorFlow and does
not cover Keras 3), so pyproject.toml lets mypy import them untyped and every object of
theirs is Any to it, whatever a hint says. Modules that import Keras write `keras.Model`;
the others (bank, saliency) write `KerasModel` rather than a bare Any that would not say what
is meant. Should Keras ship types, this is the one place to make the name real.
"""

from typing import Any

KerasModel = Any  # keras.Model: the classifier, or its feature or score model
