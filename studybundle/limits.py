"""Format versions, sizes and patterns of a study bundle (docs/bundle.md)."""

import re
import zipfile

FORMAT_VERSIONS = (1, 2)  # what the validator reads
LATEST_FORMAT = 2  # what the pipeline writes
FORMAT1_NEIGHBOURS = 6  # format 1: every query shows exactly six SE-CBIR neighbours

# Format 2's taxonomy, confidence scale and aids.
MIN_CLASSES, MAX_CLASSES = 2, 20
MIN_LIKERT, MAX_LIKERT = 2, 9  # nine: one key of the keyboard's home row per level
MAX_NEIGHBOURS = 50  # the longest neighbour list an aid may carry
# The aids' and classifiers' names are studybundle.vocabulary's (BUNDLE_AIDS, CLASSIFIERS).
PROBABILITY_TOLERANCE = 1e-3  # how far a probability vector's sum may be from 1
# Format 2's optional extensions (the manifest's `extensions`): `context` is the patient's
# age, sex and body site of each query, from the dataset's metadata (HAM10000: age, sex,
# localization), for studies that show readers what a clinician would know. `class_neighbours`
# is, in each neighbour aid, the query's nearest bank images of every class (same features,
# same lesion rules): what a probe shows (app.survey.probes.own_in_pattern), so that a
# misleading list is still retrieved for the picture beside it.
EXTENSIONS = ("context", "class_neighbours")
CONTEXT_FIELDS = ("age", "sex", "site")
SEXES = ("female", "male")
MAX_AGE = 120
MAX_SITE = 100

# Sizes: a bundle that passes these can be held in memory by one web worker.
MAX_MANIFEST_BYTES = 1 << 20
# queries.json: parsed JSON takes many times its size in memory (a 64 MB file of tiny values
# grew a worker by 3 GB), so its values are counted before it is parsed. A value costs at most
# about 100 bytes parsed, so the bound keeps a parse under ~150 MB; the demo bundle has about
# 180 values a query (four aids), so this holds some 5500 queries, far more than a reader
# study shows.
MAX_QUERIES_BYTES = 32 << 20
MAX_JSON_VALUES = 1_000_000
MAX_IMAGE_BYTES = 8 << 20
MAX_QUERIES = 20000
# Web-ready images are screen-sized: a larger one is a mistake or a decompression bomb.
MAX_IMAGE_PIXELS = 2048 * 2048
# A progressive JPEG is decoded once per scan, each pass over the whole image: 40,000 scans of
# 16 bytes (657 KB) held an import for over five minutes, 2.4 ms per scan at 2048 x 2048.
# Encoders write about ten (libjpeg's default script: 10 in colour, 6 in grey; a baseline JPEG
# has one per component at most), so a hundred bounds decoding one image to a fraction of a
# second and refuses no real image.
MAX_JPEG_SCANS = 100
MAX_ZIP_BYTES = 2 << 30  # uncompressed total of an uploaded bundle
MAX_ZIP_MEMBERS = 200000
# The .zip's directory, which zipfile reads whole: about 150 bytes a member in a real bundle
# (46 fixed, the path, an extended timestamp), so 200000 members need some 30 MB.
MAX_ZIP_DIRECTORY_BYTES = 64 << 20
# A member larger than a megabyte may unpack to at most this many times its compressed size:
# JPEGs barely compress and JSON about tenfold, while a zip bomb (2.2 MB that wrote 2 GB to
# the disk) compresses a thousandfold.
MAX_COMPRESSION_RATIO = 50
SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what zip tools write
MAX_KEY = 64  # ids and case keys
MAX_CODE = 16  # class codes
MAX_NAME = 200
MAX_DEFINITION = 4000
MAX_JSON_DEPTH = 32  # docs/bundle.md needs 5 levels; provenance may add a few

NAME_HEX = 32  # image file names: the first 32 hex digits of the sha256 of the bytes
IMAGE_NAME = re.compile(r"^[0-9a-f]{32}\.jpg\Z")  # a file of images/
IMAGE_PATH = re.compile(r"^images/[0-9a-f]{32}\.jpg\Z")  # how queries.json references it
CASE_KEY = re.compile(r"^[0-9a-f]{16,64}\Z")
CLASS_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,15}\Z")
HEX_ONLY = re.compile(r"^[0-9a-f]+\Z")
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}\Z")
# Patterns end in \Z, not $: "$" would accept a trailing newline.
# PostgreSQL can store neither a NUL nor half a surrogate pair; other controls are refused too.
UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# JPEG segments that carry metadata, which bundles must strip.
METADATA_MARKERS = {0xE1: "APP1 EXIF/XMP", 0xE2: "APP2 ICC", 0xED: "APP13 IPTC", 0xFE: "COM"}
# image_rotated must match its upright image turned by 180 degrees to within a mean absolute
# difference of this many levels, or a third of its difference to the unturned image.
ROTATION_TOLERANCE = 6.0
