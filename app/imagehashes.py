"""Perceptual hashes of images: the same picture under another id, encoding or size.

Two users, one home. The import (app.bundle) refuses a neighbour that is a query's picture
saved again, with 256-bit hashes (`perceptual_hash`, `near_pairs`, NEAR); the leak audit
(app.leakaudit) plays the attacker against the public images with 64-bit ones
(`short_hash`, `turned_hashes`, `distances`, AUDIT_DISTANCE).

The import's hashes. A bundle names its images by the hash of their bytes, and the import
refuses a neighbour whose bytes or id are a query's (studybundle.queries). Neither catches a
query's picture saved again (another quality, another size, turned): its bytes and name differ,
yet shown as a labelled neighbour it hands the reader the case's truth. A perceptual hash does:
imagehash's DCT hash of 256 bits (the 16 x 16 lowest frequencies of a 64 x 64 grey copy, each
bit "above the median") moves by a few bits under re-encoding and resizing, and by about half
its bits between two unrelated pictures.

NEAR is where "the same picture" ends. Measured on the demo's 1,500 synthetic lesions (128 px,
`training synth --seed 0`), 200 of them saved again five ways: at 96 to 256 px and JPEG
quality 50 to 90 a copy moved at most 22 bits; shrunk to 64 px at quality 40, at most 36
bits. But a grey hash sees a round blob on plain skin: 14 pairs of different synthetic
lesions were within 32 bits (the closest 20), and retrieval lists exactly such lookalikes
beside each other. Their colours tell them apart: the mean and spread of each RGB channel of
those 14 pairs differed by 9.6 levels or more, those of the copies by at most 8.2 (99 % within
5.0). So "the same picture" is both: within NEAR bits and within SAME_COLOURS levels, which
none of the 14 pairs is and 995 of the 1,000 copies are (the 5 others: shrunk to 64 px).
On the 24-pixel pictures of the tests, a copy at quality 75 moved up to 34 bits: the hash
needs images of a realistic size.

The audit's hashes. A perceptual hash (imagehash's pHash: the signs of the lowest 8 x 8
frequencies of the image's discrete cosine transform, on a 32 x 32 grey copy) survives
resizing, JPEG re-encoding and a few grey levels of noise, which is what makes it the
attacker's tool once exact bytes and sizes tell nothing (app.leakaudit): a served picture and
the public image it was made from differ by a few bits of 64, two different pictures by about
32."""

from collections.abc import Iterable, Mapping, Sequence

import imagehash
import numpy

# imagehash imports SciPy's DCT on its first hash. An import process lowers its address-space
# limit before it decodes anything (app.organiser.import_jobs), and SciPy's libraries mapped
# after that
# failed to load ("failed to map segment"): loaded here, with the module, they are part of
# what the process holds before its limits (0.9 s and 25 MB once per process).
import scipy.fftpack  # noqa: F401
from numpy.typing import NDArray
from PIL import Image

NEAR = 32  # bits of 256: at most this far apart is the same structure
SAME_COLOURS = 8.0  # levels of 255: the largest difference of a channel's mean or spread
HASH_SIZE = 16  # a side of the DCT block kept: 16 x 16 = 256 bits
BLOCK_BYTES = 1 << 22  # the comparison's working memory per block of images (4 MB)

Colours = NDArray[numpy.float32]  # `colours` of one image: three means, then three spreads


def perceptual_hash(image: Image.Image) -> imagehash.ImageHash:
    """The picture's 256-bit DCT hash (imagehash.phash with a 16 x 16 block)."""
    return imagehash.phash(image, hash_size=HASH_SIZE)


def colours(image: Image.Image) -> Colours:
    """The mean and the standard deviation of each RGB channel: the same at every turn."""
    pixels = numpy.asarray(image.convert("RGB"), dtype=numpy.float32).reshape(-1, 3)
    return numpy.concatenate([pixels.mean(axis=0), pixels.std(axis=0)])


def _packed(hashes: Sequence[imagehash.ImageHash]) -> NDArray[numpy.uint8]:
    """Hashes as rows of packed bits (uint8), for XOR and a population count."""
    return numpy.stack([numpy.packbits(numpy.asarray(h.hash, dtype=bool).ravel()) for h in hashes])


def near_pairs(
    images: Mapping[str, imagehash.ImageHash],
    references: Mapping[str, Sequence[imagehash.ImageHash]],
    colour: Mapping[str, Colours] | None = None,
    within: int = NEAR,
) -> list[tuple[str, str, int]]:
    """(image, reference, distance in bits) of every image that shows a reference's picture.

    A reference has several hashes (a query's picture upright and turned); its distance to
    an image is the smallest. With `colour` (`colours` of both, by name), a pair must also be
    within SAME_COLOURS. Closest first, then by name. The comparison runs in blocks of images,
    so that its memory stays under BLOCK_BYTES whatever the bundle's size.
    """
    if not images or not references:
        return []
    names, refs = list(images), list(references)
    packed = _packed([images[name] for name in names])
    turns = max(len(hashes) for hashes in references.values())
    # Each reference padded to `turns` hashes with its first (a repeat changes no minimum).
    table = numpy.stack(
        [_packed([*hashes, *[hashes[0]] * (turns - len(hashes))]) for hashes in references.values()]
    )
    step = max(1, BLOCK_BYTES // (len(refs) * turns * packed.shape[1]))
    found: list[tuple[str, str, int]] = []
    for start in range(0, len(names), step):
        xor = packed[start : start + step, None, None, :] ^ table[None, :, :, :]
        distances = numpy.bitwise_count(xor).sum(axis=-1, dtype=numpy.int32).min(axis=-1)
        for i, j in zip(*numpy.nonzero(distances <= within), strict=True):
            image, reference = names[start + int(i)], refs[int(j)]
            if colour is not None:
                apart = numpy.abs(colour[image] - colour[reference]).max()
                if apart > SAME_COLOURS:
                    continue
            found.append((image, reference, int(distances[i, j])))
    return sorted(found, key=lambda pair: (pair[2], pair[0], pair[1]))


# ---------------------------------------------------------------- the leak audit's hashes

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
