"""The study bundle: the one contract between the training pipeline and the web app.

Both sides import this package and nothing else of each other: the pipeline writes bundles
and checks them with `validate_bundle`, the app's importer checks them with the same function.
It imports neither Flask nor TensorFlow (NumPy and Pillow only). docs/bundle.md is its prose.

- `limits`: format versions, sizes, patterns, the aids; `taxonomy`: HAM10000's classes and
  the thesis's Likert labels (the defaults, declared nowhere else); `vote`: the rank-weighted
  majority vote.
- `validate_bundle(folder) -> ValidBundle` or `BundleError` naming every problem found;
  `check_manifest`, `check_queries`, `check_images` are its parts.
- `metrics`: the run's metrics.json (a format-2 manifest's `provenance.metrics`) as a typed
  record: the pipeline writes it through `Metrics`, the app reads it with `read_metrics`.
- `read`: both formats in one shape (format 1 seen as format 2); `jsonio`: strict JSON in,
  deterministic JSON out, the digest; `archive.extract_zip`: an uploaded .zip, safely.
"""

from studybundle.errors import BundleError
from studybundle.manifest import Layout, check_manifest
from studybundle.queries import check_queries
from studybundle.validate import ValidBundle, check_images, validate_bundle

__all__ = [
    "BundleError",
    "Layout",
    "ValidBundle",
    "check_images",
    "check_manifest",
    "check_queries",
    "validate_bundle",
]
