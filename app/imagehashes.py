"""64-bit perceptual hashes of images, and their Hamming distances.

A perceptual hash (imagehash's pHash: the signs of the lowest 8 x 8 frequencies of the
image's discrete cosine transform, on a 32 x 32 grey copy) survives resizing, JPEG
re-encoding and a few grey levels of noise, which is what makes it the attacker's tool once
exact bytes and sizes tell nothing (app.leakaudit): a served picture and the public image it
was made from differ by a few bits of 64, two different pictures by about 32.
"""

from collections.abc import Iterable

import imagehash
import numpy
from numpy.typing import NDArray
from PIL import Image

# A served file within this many bits of a public image counts as that image in the leak
# audit (the nearest one wins). On 40 of the demo's synthetic images at 450 px, the keyed
# noise and JPEG round trips moved a pHash by 0-2 bits; the same picture turned was 20 or more
# bits away, the nearest other picture 18 in the median and 6 at the least.
AUDIT_DISTANCE = 10
TURNS = (0, 90, 180, 270)  # degrees, counter-clockwise


def short_hash(image: Image.Image) -> int:
    """The 64-bit pHash of `image` as an unsigned integer."""
    bits = imagehash.phash(image, hash_size=8).hash.flatten()
    return int("".join("1" if bit else "0" for bit in bits), 2)


def turned_hashes(image: Image.Image) -> list[int]:
    """The pHashes of `image` turned by each of TURNS: a reader may be shown any of them."""
    return [short_hash(image.rotate(turn, expand=True) if turn else image) for turn in TURNS]


def as_array(hashes: Iterable[int]) -> NDArray[numpy.uint64]:
    """Hashes as an array of unsigned 64-bit integers (for `distances`)."""
    return numpy.fromiter(hashes, dtype=numpy.uint64)


def distances(hash_value: int, table: NDArray[numpy.uint64]) -> NDArray[numpy.int64]:
    """The Hamming distance (differing bits) from `hash_value` to every hash of `table`."""
    counts: NDArray[numpy.int64] = numpy.bitwise_count(table ^ numpy.uint64(hash_value)).astype(
        numpy.int64
    )
    return counts
