"""A synthetic dataset in HAM10000's exact on-disk format, for demos and tests.

Seven classes of drawn "lesions" on varied skin, each with the visual cue a dermatologist
would name first (vasc: red/purple lacunae; nv: round, uniform brown; mel: large,
asymmetric, multi-coloured; bcc: translucent pink with branching vessels; df: small brown
ring with a white centre; bkl: waxy tan with ridges and milia; akiec: red-pink with white
scale), with enough variation, hair, lighting and noise that a small CNN must learn them,
and the acquisition artefacts of real dermoscopy (hairs, ruler marks, gel bubbles, marker
ink, vignetting) at the same rate in every class, so they say nothing about the diagnosis.
Like HAM10000, some lesions are imaged several times (rotated, zoomed, relit), nv
dominates, and the rare classes keep a floor so every class reaches every split.

Everything is drawn analytically on a coordinate grid with NumPy, so a re-imaged lesion
is the same lesion seen through a different transform, and the output is byte-identical
for a seed.
"""

import argparse
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from training.data import CLASSES, METADATA_NAME
from training.errors import PipelineError

# What the drawing works in: grids, colours and parameter tables, float32 almost everywhere
# (a few parameters, such as a lesion's position, are float64).
Floats = NDArray[np.floating[Any]]

# HAM10000's images per class (10,015 in all): the imbalance to mimic.
HAM_COUNTS: dict[str, int] = {
    "akiec": 327,
    "bcc": 514,
    "bkl": 1099,
    "df": 115,
    "mel": 1113,
    "nv": 6705,
    "vasc": 142,
}
# How many HAM10000 lesions have 1, 2, ... 6 images (7,470 lesions, 1.34 images each).
LESION_SIZE_COUNTS: tuple[int, ...] = (5514, 1423, 490, 34, 5, 4)
MIN_PER_CLASS = 8
FLOOR_FRACTION = 0.04
MIN_SIZE = 16
FIRST_IMAGE_NUMBER = 24306  # HAM10000's image ids run from ISIC_0024306
COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset")
PART_FOLDERS = ("HAM10000_images_part_1", "HAM10000_images_part_2")

DX_TYPES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "akiec": (("histo",), (1.0,)),
    "bcc": (("histo",), (1.0,)),
    "bkl": (("histo", "consensus", "confocal"), (0.5, 0.43, 0.07)),
    "df": (("histo", "consensus"), (0.45, 0.55)),
    "mel": (("histo",), (1.0,)),
    "nv": (("follow_up", "histo", "consensus"), (0.55, 0.33, 0.12)),
    "vasc": (("histo", "consensus"), (0.6, 0.4)),
}
MEAN_AGE: dict[str, float] = {
    "akiec": 67,
    "bcc": 67,
    "bkl": 59,
    "df": 53,
    "mel": 61,
    "nv": 47,
    "vasc": 52,
}
LOCALIZATIONS: tuple[tuple[str, int], ...] = (
    ("back", 2192),
    ("lower extremity", 2077),
    ("trunk", 1404),
    ("upper extremity", 1118),
    ("abdomen", 1022),
    ("face", 745),
    ("chest", 407),
    ("foot", 319),
    ("unknown", 234),
    ("neck", 168),
    ("scalp", 128),
    ("hand", 90),
    ("ear", 56),
    ("genital", 48),
    ("acral", 7),
)
DATASETS: tuple[tuple[str, int], ...] = (
    ("vidir_molemax", 3954),
    ("vidir_modern", 3363),
    ("rosendahl", 2259),
    ("vienna_dias", 439),
)

# Colours as RGB in 0..1.
LIGHT_SKIN = np.array([0.95, 0.80, 0.71], dtype=np.float32)
DARK_SKIN = np.array([0.70, 0.50, 0.38], dtype=np.float32)
BASE_COLOURS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    # Two ends of each class's usual colour; a lesion's colour lies between them.
    "akiec": ((0.88, 0.50, 0.47), (0.76, 0.36, 0.34)),
    "bcc": ((0.92, 0.70, 0.70), (0.84, 0.58, 0.60)),
    "bkl": ((0.78, 0.62, 0.44), (0.56, 0.42, 0.29)),
    "df": ((0.66, 0.47, 0.34), (0.52, 0.35, 0.25)),
    "mel": ((0.42, 0.26, 0.17), (0.25, 0.15, 0.11)),
    "nv": ((0.62, 0.43, 0.29), (0.36, 0.22, 0.14)),
    "vasc": ((0.72, 0.12, 0.18), (0.42, 0.10, 0.32)),
}
MELANOMA_PALETTE = np.array(
    [
        (0.20, 0.11, 0.07),  # dark brown
        (0.10, 0.07, 0.07),  # black
        (0.44, 0.48, 0.60),  # blue-grey veil
        (0.62, 0.42, 0.28),  # light brown
        (0.72, 0.34, 0.33),  # red
        (0.88, 0.84, 0.84),  # white regression
    ],
    dtype=np.float32,
)


def class_counts(images: int) -> dict[str, int]:
    """Images per class: HAM10000's proportions, each rare class at least max(8, 4%)."""
    floor = max(MIN_PER_CLASS, math.ceil(FLOOR_FRACTION * images))
    total = sum(HAM_COUNTS.values())
    counts = {
        name: max(floor, round(images * HAM_COUNTS[name] / total))
        for name in CLASSES
        if name != "nv"
    }
    counts["nv"] = images - sum(counts.values())
    if counts["nv"] < max(counts.values()):
        raise PipelineError(
            f"--images {images} is too few for HAM10000's imbalance with a floor of {floor} "
            f"per class; use at least {len(CLASSES) * MIN_PER_CLASS}"
        )
    return {name: counts[name] for name in CLASSES}


def _choice(rng: np.random.Generator, table: tuple[tuple[str, int], ...]) -> str:
    """One name from a (name, weight) table."""
    weights = np.array([weight for _, weight in table], dtype=float)
    return table[int(rng.choice(len(table), p=weights / weights.sum()))][0]


def plan_lesions(images: int, seed: int) -> list[dict[str, Any]]:
    """Lesions with their class, image count and metadata, in CSV order (lesions shuffled)."""
    rng = np.random.default_rng([seed, 0])
    size_p = np.array(LESION_SIZE_COUNTS, dtype=float) / sum(LESION_SIZE_COUNTS)
    lesions: list[dict[str, Any]] = []
    for dx, count in class_counts(images).items():
        left = count
        while left > 0:
            size = min(left, int(rng.choice(len(size_p), p=size_p)) + 1)
            left -= size
            dx_types, dx_p = DX_TYPES[dx]
            sex = rng.choice(["male", "female", "unknown"], p=[0.54, 0.45, 0.01])
            lesions.append(
                {
                    "dx": dx,
                    "images": size,
                    "dx_type": str(rng.choice(dx_types, p=dx_p)),
                    "age": str(int(np.clip(round(rng.normal(MEAN_AGE[dx], 15) / 5) * 5, 0, 85))),
                    "sex": str(sex),
                    "localization": _choice(rng, LOCALIZATIONS),
                    "dataset": _choice(rng, DATASETS),
                }
            )
    order = rng.permutation(len(lesions))
    lesions = [lesions[index] for index in order]
    lesion_numbers = rng.permutation(len(lesions))
    image_numbers = iter(FIRST_IMAGE_NUMBER + rng.permutation(images))
    for index, lesion in enumerate(lesions):
        lesion["index"] = index
        lesion["lesion_id"] = f"HAM_{lesion_numbers[index]:07d}"
        lesion["image_ids"] = [f"ISIC_{next(image_numbers):07d}" for _ in range(lesion["images"])]
    return lesions


# ---------------------------------------------------------------- drawing primitives


def _grid(size: int) -> tuple[Floats, Floats]:
    """Pixel-centre coordinates x (right) and y (down), both in -1..1, float32 (size, size)."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    y, x = np.meshgrid(coords, coords, indexing="ij")
    return x, y


def _smoothstep(t: Floats) -> Floats:
    """0 below 0, 1 above 1, a smooth S in between."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _waves(rng: np.random.Generator, count: int, low: float, high: float) -> Floats:
    """Random plane waves (kx, ky, phase, amplitude) with spatial frequency in [low, high]."""
    angle = rng.uniform(0, 2 * np.pi, count)
    freq = rng.uniform(low, high, count)
    return np.stack(
        [
            freq * np.cos(angle),
            freq * np.sin(angle),
            rng.uniform(0, 2 * np.pi, count),
            rng.uniform(0.5, 1.0, count),
        ],
        axis=1,
    ).astype(np.float32)


def _field(waves: Floats, u: Floats, v: Floats) -> Floats:
    """A smooth random field of roughly unit variance: a sum of plane waves at (u, v)."""
    total = np.zeros_like(u)
    for kx, ky, phase, amplitude in waves:
        total += amplitude * np.sin(kx * u + ky * v + phase)
    field: Floats = total / np.sqrt(0.5 * np.sum(waves[:, 3] ** 2))
    return field


def _harmonics(rng: np.random.Generator, amplitudes: list[float]) -> Floats:
    """Border harmonics (order, amplitude, phase): amplitude k perturbs the radius at order k+1."""
    return np.array(
        [
            (order + 1, rng.uniform(0.4, 1.0) * amplitude, rng.uniform(0, 2 * np.pi))
            for order, amplitude in enumerate(amplitudes)
        ],
        dtype=np.float32,
    ).reshape(-1, 3)


def _radius(harmonics: Floats, phi: Floats) -> Floats:
    """The relative border radius 1 + sum a_k cos(k phi + p_k) at angle phi."""
    radius = np.ones_like(phi)
    for order, amplitude, phase in harmonics:
        radius += amplitude * np.cos(order * phi + phase)
    return radius


def _segments_alpha(u: Floats, v: Floats, segments: Floats, pixel: float) -> Floats:
    """Anti-aliased coverage of line segments (x0, y0, x1, y1, width) at each pixel."""
    alpha = np.zeros_like(u)
    for x0, y0, x1, y1, width in segments:
        dx, dy = x1 - x0, y1 - y0
        along = np.clip(((u - x0) * dx + (v - y0) * dy) / max(dx * dx + dy * dy, 1e-8), 0, 1)
        distance = np.hypot(u - x0 - along * dx, v - y0 - along * dy)
        np.maximum(alpha, _smoothstep((0.5 * width - distance) / pixel + 0.5), out=alpha)
    return alpha


def _vessel_tree(rng: np.random.Generator, radius: float) -> Floats:
    """Branching (arborizing) vessel segments inside a lesion of `radius`, thick to thin."""
    segments: list[tuple[float, float, float, float, float]] = []
    stack = []
    for _ in range(int(rng.integers(2, 4))):
        angle = rng.uniform(0, 2 * np.pi)
        start = 0.75 * radius * np.array([np.cos(angle), np.sin(angle)])
        heading = angle + np.pi + rng.normal(0, 0.5)
        stack.append((start, heading, radius * rng.uniform(0.35, 0.5), 0.035 * radius + 0.012, 0))
    while stack and len(segments) < 40:
        start, heading, length, width, depth = stack.pop()
        end = start + length * np.array([np.cos(heading), np.sin(heading)])
        segments.append((start[0], start[1], end[0], end[1], width))
        if depth < 3:
            for turn in (-1, 1):
                stack.append(
                    (
                        end,
                        heading + turn * rng.uniform(0.3, 0.9),
                        length * rng.uniform(0.55, 0.8),
                        width * 0.72,
                        depth + 1,
                    )
                )
    return np.array(segments, dtype=np.float32)


def _blobs(rng: np.random.Generator, count: int, spread: float, low: float, high: float) -> Floats:
    """`count` discs (x, y, radius) scattered within `spread` of the centre."""
    angle = rng.uniform(0, 2 * np.pi, count)
    distance = spread * np.sqrt(rng.uniform(0, 1, count))
    return np.stack(
        [distance * np.cos(angle), distance * np.sin(angle), rng.uniform(low, high, count)], axis=1
    ).astype(np.float32)


def _discs_alpha(
    u: Floats, v: Floats, discs: Floats, pixel: float
) -> tuple[Floats, NDArray[np.intp]]:
    """Coverage of the union of discs with anti-aliased edges, and which disc covers each pixel."""
    depth = discs[:, 2, None, None] - np.sqrt(
        (u[None] - discs[:, 0, None, None]) ** 2 + (v[None] - discs[:, 1, None, None]) ** 2
    )
    nearest = np.argmax(depth, axis=0)
    return _smoothstep(np.max(depth, axis=0) / (1.5 * pixel) + 0.5), nearest


# ---------------------------------------------------------------- lesions


def _lerp(low: tuple[float, ...] | Floats, high: tuple[float, ...] | Floats, t: float) -> Floats:
    """The colour a fraction t of the way from `low` to `high`."""
    low, high = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
    return low + (high - low) * np.float32(t)


def sample_look(dx: str, rng: np.random.Generator) -> dict[str, Any]:
    """Everything that makes one lesion look the way it does, whichever view it is seen in."""
    colour_class = dx
    if rng.uniform() < 0.08:
        # A few lesions borrow another class's colour, as real ones do, so colour alone
        # cannot be a perfect classifier.
        colour_class = str(rng.choice([name for name in CLASSES if name != dx]))
    low, high = BASE_COLOURS[colour_class]
    look: dict[str, Any] = {
        "dx": dx,
        "skin": _lerp(LIGHT_SKIN, DARK_SKIN, rng.uniform() ** 1.5)
        * rng.normal(1.0, 0.025, 3).astype(np.float32),
        "colour": _lerp(low, high, rng.uniform()) * rng.normal(1.0, 0.04, 3).astype(np.float32),
        "texture": _waves(rng, 6, 2.0, 6.0),
        "fine": _waves(rng, 6, 14.0, 26.0),
        "speckle": _waves(rng, 10, 30.0, 50.0),
        "opacity": 1.0,
    }
    if dx == "nv":
        look |= {
            "radius": rng.uniform(0.28, 0.55),
            "border": _harmonics(rng, [0.0, 0.04, 0.025, 0.015]),
            "edge": rng.uniform(0.10, 0.25),
            "network": rng.uniform(0.0, 0.10),
        }
    elif dx == "mel":
        count = int(rng.integers(3, 5))
        look |= {
            "radius": rng.uniform(0.45, 0.68),
            "border": _harmonics(rng, [0.16, 0.12, 0.09, 0.08, 0.07, 0.06, 0.05]),
            "edge": rng.uniform(0.03, 0.12),
            "palette": MELANOMA_PALETTE[rng.choice(len(MELANOMA_PALETTE), count, replace=False)],
            "blotches": [_waves(rng, 4, 1.5, 5.0) for _ in range(count)],
            "sharpness": rng.uniform(3.0, 6.0),
            "dots": _blobs(rng, int(rng.integers(0, 9)), 0.8, 0.015, 0.035),
        }
    elif dx == "bkl":
        look |= {
            "radius": rng.uniform(0.32, 0.58),
            "border": _harmonics(rng, [0.05, 0.06, 0.04, 0.03]),
            "edge": rng.uniform(0.02, 0.06),
            "ridges": rng.uniform(7.0, 13.0),
            "milia": _blobs(rng, int(rng.integers(2, 9)), 0.75, 0.02, 0.045),
        }
    elif dx == "bcc":
        radius = rng.uniform(0.35, 0.6)
        look |= {
            "radius": radius,
            "border": _harmonics(rng, [0.04, 0.08, 0.05, 0.03]),
            "edge": rng.uniform(0.15, 0.3),
            "opacity": rng.uniform(0.55, 0.8),
            "vessels": _vessel_tree(rng, radius),
            "vessel_colour": _lerp((0.78, 0.10, 0.14), (0.60, 0.05, 0.12), rng.uniform()),
            "nests": _blobs(rng, int(rng.integers(0, 4)), 0.6 * radius, 0.04, 0.08),
        }
    elif dx == "df":
        look |= {
            "radius": rng.uniform(0.2, 0.32),
            "border": _harmonics(rng, [0.02, 0.04, 0.03]),
            "edge": rng.uniform(0.25, 0.4),
            "centre": rng.uniform(0.35, 0.55),
            "centre_border": _harmonics(rng, [0.08, 0.1, 0.06]),
        }
    elif dx == "akiec":
        look |= {
            "radius": rng.uniform(0.35, 0.6),
            "border": _harmonics(rng, [0.06, 0.1, 0.07, 0.05, 0.03]),
            "edge": rng.uniform(0.2, 0.35),
            "scale": rng.uniform(0.15, 0.3),
            "scale_colour": _lerp((0.96, 0.94, 0.88), (0.92, 0.86, 0.70), rng.uniform()),
        }
    else:  # vasc
        radius = rng.uniform(0.2, 0.42)
        look |= {
            "radius": radius,
            "border": _harmonics(rng, [0.05, 0.06, 0.04]),
            "edge": rng.uniform(0.2, 0.35),
            "lacunae": _blobs(rng, int(rng.integers(3, 9)), 0.7 * radius, 0.07, 0.16),
            "lacuna_shades": rng.uniform(0, 1, 8).astype(np.float32),
        }
    return look


def _paint_lesion(
    look: dict[str, Any], u: Floats, v: Floats, pixel: float
) -> list[tuple[Floats, Floats]]:
    """The lesion as layers (colour HxWx3, alpha HxW) in lesion coordinates u, v."""
    dx = look["dx"]
    rho = np.sqrt(u * u + v * v)
    phi = np.arctan2(v, u)
    radius = look["radius"] * _radius(look["border"], phi)
    edge = max(look["edge"] * look["radius"], 1.5 * pixel)
    body = _smoothstep((radius - rho) / edge + 0.5) * np.float32(look["opacity"])
    inside = np.clip(rho / np.maximum(radius, 1e-3), 0.0, 1.5)
    texture = _field(look["texture"], u, v)
    fine = _field(look["fine"], u, v)
    colour = look["colour"][None, None, :] * (1.0 + 0.05 * texture)[..., None]
    layers: list[tuple[Floats, Floats]] = []

    if dx == "nv":
        # Slightly darker centre, faint regular network.
        network = np.sin(38.0 * u) * np.sin(38.0 * v)
        shade = 1.0 - 0.12 * (1.0 - inside) - look["network"] * network
        layers.append((colour * shade[..., None], body))
    elif dx == "mel":
        # Blotches of 3-4 colours, each region where its own smooth field is highest.
        scores = np.stack([_field(waves, u, v) for waves in look["blotches"]])
        weights = np.exp(look["sharpness"] * (scores - scores.max(axis=0)))
        weights /= weights.sum(axis=0)
        mixed = np.einsum("khw,kc->hwc", weights, look["palette"])
        mixed = 0.75 * mixed + 0.25 * look["colour"][None, None, :]
        layers.append((mixed * (1.0 + 0.06 * fine)[..., None], body))
        if len(look["dots"]):
            dots, _ = _discs_alpha(u, v, look["dots"] * [look["radius"], look["radius"], 1], pixel)
            dark = np.broadcast_to(np.array([0.12, 0.07, 0.06], dtype=np.float32), colour.shape)
            layers.append((dark, dots * 0.9))
    elif dx == "bkl":
        # Waxy: cerebriform ridges (a warped stripe pattern) and bright milia-like cysts.
        ridges = np.sin(look["ridges"] * (u + 0.35 * texture * look["radius"]) / look["radius"])
        shade = 1.0 + 0.16 * ridges + 0.04 * fine
        waxy = colour * shade[..., None] * 0.85 + 0.15 * np.array(
            [0.9, 0.85, 0.75], dtype=np.float32
        )
        layers.append((waxy, body))
        milia, _ = _discs_alpha(u, v, look["milia"] * [look["radius"], look["radius"], 1], pixel)
        bright = np.broadcast_to(np.array([0.96, 0.93, 0.82], dtype=np.float32), colour.shape)
        layers.append((bright, milia * body * 0.85))
    elif dx == "bcc":
        # Translucent pink with blue-grey ovoid nests and arborizing red vessels.
        layers.append((colour * (1.0 + 0.04 * fine)[..., None], body))
        if len(look["nests"]):
            nests, _ = _discs_alpha(u, v, look["nests"], pixel)
            grey = np.broadcast_to(np.array([0.42, 0.46, 0.58], dtype=np.float32), colour.shape)
            layers.append((grey, nests * 0.7))
        vessels = _segments_alpha(u, v, look["vessels"], pixel)
        red = np.broadcast_to(look["vessel_colour"], colour.shape)
        layers.append((red, vessels * 0.9))
    elif dx == "df":
        # Light-brown ring fading out, with an irregular white scar-like centre.
        layers.append((colour * (1.0 + 0.05 * fine)[..., None], body))
        centre_radius = look["centre"] * look["radius"] * _radius(look["centre_border"], phi)
        centre = _smoothstep((centre_radius - rho) / max(0.3 * centre_radius.mean(), pixel) + 0.5)
        white = np.broadcast_to(np.array([0.94, 0.90, 0.87], dtype=np.float32), colour.shape)
        layers.append((white, centre * 0.9))
    elif dx == "akiec":
        # Red-pink, ill-defined, covered in patches of white-yellow scale.
        layers.append((colour * (1.0 + 0.06 * texture)[..., None], body))
        threshold = 1.6 - 4.0 * look["scale"]
        speckle = _field(look["speckle"], u, v)
        scale = _smoothstep((speckle + 0.5 * texture - threshold) * 2.5) * body
        flakes = np.broadcast_to(look["scale_colour"], colour.shape)
        layers.append((flakes, scale * 0.9))
    else:  # vasc
        # A reddish halo holding sharply bordered red-to-purple lacunae with pale septa.
        halo = _lerp((0.86, 0.62, 0.64), (0.80, 0.52, 0.58), 0.5)
        layers.append((np.broadcast_to(halo, colour.shape), body * 0.6))
        lacunae, which = _discs_alpha(u, v, look["lacunae"], pixel)
        shade = look["lacuna_shades"][which][..., None]
        dark = np.array([0.32, 0.05, 0.14], dtype=np.float32)
        tint = colour * (1.0 - 0.6 * shade) + dark * (0.6 * shade)
        layers.append((tint * (1.0 + 0.04 * fine)[..., None], lacunae))
    return layers


def _background(
    look: dict[str, Any], rng: np.random.Generator, x: Floats, y: Floats, size: int
) -> Floats:
    """Skin of the lesion's tone with blotches, grain, and sometimes the dermatoscope's rim."""
    blotch = _field(_waves(rng, 5, 1.0, 4.0), x, y)
    skin = look["skin"][None, None, :] * (1.0 + 0.04 * blotch)[..., None]
    redness = np.clip(_field(_waves(rng, 3, 1.0, 3.0), x, y), 0, None)[..., None]
    skin = skin + np.array([0.03, -0.02, -0.02], dtype=np.float32) * redness
    # Grain: coarse noise upsampled, so it is smooth at a pixel's scale and fast to make.
    coarse = rng.normal(0, 1, (max(2, size // 4), max(2, size // 4))).astype(np.float32)
    grain = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR))
    shaded: Floats = skin * (1.0 + 0.025 * grain)[..., None]
    return shaded


def _hairs(rng: np.random.Generator, x: Floats, y: Floats, pixel: float) -> tuple[Floats, Floats]:
    """Zero to a few dark, gently curved hairs across the image: colour and alpha."""
    alpha = np.zeros_like(x)
    count = int(rng.integers(1, 6)) if rng.uniform() < 0.45 else 0
    for _ in range(count):
        angle = rng.uniform(0, np.pi)
        normal = (-np.sin(angle), np.cos(angle))
        cx, cy = rng.uniform(-0.8, 0.8, 2)
        along = np.cos(angle) * (x - cx) + np.sin(angle) * (y - cy)
        across = normal[0] * (x - cx) + normal[1] * (y - cy) + rng.normal(0, 0.08) * along**2
        width = rng.uniform(0.6, 1.4) * pixel
        alpha = np.maximum(alpha, _smoothstep((width - np.abs(across)) / pixel + 0.5))
    colour = np.array([0.16, 0.11, 0.08], dtype=np.float32) * np.float32(rng.uniform(0.6, 1.4))
    return np.broadcast_to(colour, (*x.shape, 3)), alpha * 0.85


# How often each acquisition artefact appears; the same for every class, so none says
# anything about the diagnosis (as in real dermoscopy, where a model must learn to ignore them).
ARTEFACT_RATES: dict[str, float] = {"ruler": 0.2, "bubbles": 0.3, "ink": 0.12, "vignette": 0.5}


def _ruler(rng: np.random.Generator, x: Floats, y: Floats, pixel: float) -> Floats:
    """Alpha of a ruler's tick marks along one edge (every fifth tick longer)."""
    turns = int(rng.integers(0, 4))
    along, depth = [(x, y), (y, -x), (-x, -y), (-y, x)][turns]
    spacing = rng.uniform(0.05, 0.09)
    edge = rng.uniform(0.78, 0.9)
    phase = rng.uniform(0, spacing)
    position = (along - phase) / spacing
    tick = np.abs(position - np.round(position)) * spacing
    long = (np.round(position) % 5) == 0
    length = np.where(long, 0.12, 0.06)
    inside = (depth > edge) & (depth < edge + length)
    line = _smoothstep((0.8 * pixel - tick) / pixel + 0.5) * inside
    base = _smoothstep((0.8 * pixel - np.abs(depth - edge)) / pixel + 0.5)
    return np.clip(np.maximum(line, base), 0, 1) * 0.9


def _bubbles(rng: np.random.Generator, x: Floats, y: Floats, pixel: float) -> Floats:
    """Brightness added by immersion-gel bubbles: thin bright rims with a highlight."""
    light = np.zeros_like(x)
    for _ in range(int(rng.integers(1, 7))):
        cx, cy = rng.uniform(-0.9, 0.9, 2)
        radius = rng.uniform(0.03, 0.12)
        distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
        rim = _smoothstep((1.2 * pixel - np.abs(distance - radius)) / pixel + 0.5)
        spot = np.sqrt((x - cx + 0.4 * radius) ** 2 + (y - cy + 0.4 * radius) ** 2)
        highlight = _smoothstep((0.25 * radius - spot) / pixel + 0.5)
        light = np.maximum(light, 0.35 * rim + 0.5 * highlight)
    return light


def _ink(rng: np.random.Generator, x: Floats, y: Floats, pixel: float) -> tuple[Floats, Floats]:
    """A surgical-marker stroke (purple or blue) near the edge of the field: colour, alpha."""
    angle = rng.uniform(0, 2 * np.pi)
    centre = np.array([np.cos(angle), np.sin(angle)]) * rng.uniform(0.55, 0.8)
    direction = angle + np.pi / 2 + rng.normal(0, 0.3)
    along = np.cos(direction) * (x - centre[0]) + np.sin(direction) * (y - centre[1])
    across = (
        -np.sin(direction) * (x - centre[0])
        + np.cos(direction) * (y - centre[1])
        + rng.normal(0, 0.3) * along**2
    )
    width = rng.uniform(2.0, 5.0) * pixel
    length = rng.uniform(0.15, 0.45)
    alpha = _smoothstep((width - np.abs(across)) / pixel + 0.5) * (np.abs(along) < length)
    colour = (
        np.array([0.42, 0.22, 0.55], dtype=np.float32)
        if rng.uniform() < 0.6
        else np.array([0.2, 0.3, 0.6], dtype=np.float32)
    )
    return np.broadcast_to(colour, (*x.shape, 3)), alpha * rng.uniform(0.5, 0.85)


def add_artefacts(image: Floats, rng: np.random.Generator, size: int) -> Floats:
    """Ruler marks, gel bubbles, marker ink and vignetting, each at a class-independent rate."""
    x, y = _grid(size)
    pixel = 2.0 / size
    if rng.uniform() < ARTEFACT_RATES["ruler"]:
        alpha = _ruler(rng, x, y, pixel)
        image = image + (np.array([0.12, 0.12, 0.12], dtype=np.float32) - image) * alpha[..., None]
    if rng.uniform() < ARTEFACT_RATES["bubbles"]:
        image = image + (1.0 - image) * _bubbles(rng, x, y, pixel)[..., None]
    if rng.uniform() < ARTEFACT_RATES["ink"]:
        colour, alpha = _ink(rng, x, y, pixel)
        image = image + (colour - image) * alpha[..., None]
    if rng.uniform() < ARTEFACT_RATES["vignette"]:
        strength = rng.uniform(0.1, 0.35)
        image = image * (1.0 - strength * (x * x + y * y) / 2.0)[..., None]
    return image.astype(np.float32)


def lesion_extent(look: dict[str, Any]) -> float:
    """The lesion's outermost border radius in its own coordinates (at zoom 1)."""
    return float(look["radius"] * (1.0 + np.abs(look["border"][:, 1]).sum()))


def _lesion_frame(
    x: Floats,
    y: Floats,
    centre: Floats,
    zoom: float,
    rng: np.random.Generator,
    size: int,
) -> tuple[Floats, Floats, float]:
    """Lesion coordinates (u, v) of every pixel for a lesion at `centre` seen at `zoom`, in a
    random orientation and handedness; and one pixel's width in those coordinates."""
    theta = rng.uniform(0, 2 * np.pi)
    flip = -1.0 if rng.uniform() < 0.5 else 1.0
    dx, dy = x - np.float32(centre[0]), y - np.float32(centre[1])
    cos, sin = np.float32(np.cos(theta) / zoom), np.float32(np.sin(theta) / zoom)
    u = (cos * dx + sin * dy) * np.float32(flip)
    v = -sin * dx + cos * dy
    return u, v, 2.0 / (size * zoom)


def _photograph(
    image: Floats, rng: np.random.Generator, x: Floats, y: Floats, size: int
) -> NDArray[np.uint8]:
    """Hairs, acquisition artefacts and light over painted skin; uint8 (size, size, 3)."""
    hair, alpha = _hairs(rng, x, y, 2.0 / size)
    image = image + (hair - image) * alpha[..., None]
    # Acquisition artefacts from their own stream, independent of the lesion's class.
    image = add_artefacts(image, np.random.default_rng(rng.integers(2**63)), size)

    # Light: exposure, colour cast, uneven illumination, gamma, sometimes the scope's dark rim.
    gain = rng.uniform(0.85, 1.12) * rng.normal(1.0, 0.035, 3).astype(np.float32)
    slope = rng.normal(0, 0.06, 2)
    light = 1.0 + np.float32(slope[0]) * x + np.float32(slope[1]) * y
    image = image * gain[None, None, :] * light[..., None]
    if rng.uniform() < 0.35:
        rim = _smoothstep((np.sqrt(x * x + y * y) - rng.uniform(1.0, 1.35)) / 0.08 + 0.5)
        image = image * (1.0 - 0.9 * rim)[..., None]
    image = np.clip(image, 0.0, 1.0) ** np.float32(rng.uniform(0.9, 1.1))
    image = image + rng.normal(0, rng.uniform(0.008, 0.03), image.shape).astype(np.float32)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_view(
    look: dict[str, Any], view: int, size: int, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """One photograph of a lesion as uint8 (size, size, 3); views differ in pose and light."""
    x, y = _grid(size)
    rim_zoom = 0.95 / lesion_extent(look)
    if view == 0:
        zoom = min(rng.uniform(0.9, 1.1), rim_zoom * 1.1)
        offset = rng.normal(0, 0.05, 2)
    else:  # re-imaged: another angle, another magnification, another position
        zoom = min(rng.uniform(0.75, 1.3), rim_zoom * 1.2)
        offset = rng.normal(0, 0.1, 2)
    u, v, pixel = _lesion_frame(x, y, offset, zoom, rng, size)
    image = _background(look, rng, x, y, size)
    for colour, alpha in _paint_lesion(look, u, v, pixel):
        image = image + (colour - image) * alpha[..., None]
    return _photograph(image, rng, x, y, size)


# A class-free mark: the same ring, of one colour, round whichever lesion it marks; 3 px wide
# at any size, so at the positive control's 64 px it stays a closed ring through JPEG and the
# RGB model's rotations (its width was raised from 1.5 with other changes, not measured apart).
RING_COLOUR = np.array([0.10, 0.75, 0.30], dtype=np.float32)
RING_WIDTH_PIXELS = 3.0
RING_GAP_PIXELS = 2.5


def render_scene(
    looks: list[dict[str, Any]],
    placements: list[tuple[float, float, float]],
    size: int,
    rng: np.random.Generator,
    ring: bool = False,
) -> tuple[NDArray[np.uint8], list[Floats]]:
    """Several lesions on the first one's skin, each at (x, y, zoom), in one photograph.

    Returns the uint8 image and each lesion's coverage (float32 0..1, the most opaque of its
    painted layers at each pixel). `ring`: a thin ring of a class-free colour round the first
    lesion. The ring draws nothing from `rng`, so the same generator state gives the same
    photograph with and without it.
    """
    if len(looks) != len(placements) or not looks:
        raise ValueError("one placement per lesion, at least one lesion")
    x, y = _grid(size)
    image = _background(looks[0], rng, x, y, size)
    coverages = []
    for look, (cx, cy, zoom) in zip(looks, placements, strict=True):
        u, v, pixel = _lesion_frame(x, y, np.array([cx, cy]), zoom, rng, size)
        coverage = np.zeros_like(x)
        for colour, alpha in _paint_lesion(look, u, v, pixel):
            image = image + (colour - image) * alpha[..., None]
            np.maximum(coverage, alpha, out=coverage)
        coverages.append(coverage)
    if ring:
        cx, cy, zoom = placements[0]
        pixel = 2.0 / size
        radius = lesion_extent(looks[0]) * zoom + RING_GAP_PIXELS * pixel
        distance = np.abs(np.sqrt((x - cx) ** 2 + (y - cy) ** 2) - radius)
        alpha = _smoothstep((0.5 * RING_WIDTH_PIXELS * pixel - distance) / pixel + 0.5)
        image = image + (RING_COLOUR - image) * alpha[..., None]
    return _photograph(image, rng, x, y, size), coverages


# ---------------------------------------------------------------- writing


def write_synthetic(out: Path, images: int, size: int, seed: int) -> Path:
    """Write `images` synthetic images and their metadata CSV to `out`; return the CSV path."""
    if size < MIN_SIZE:
        raise PipelineError(f"--size {size} is too small; use at least {MIN_SIZE} px")
    lesions = plan_lesions(images, seed)
    out = Path(out)
    folders = [out / name for name in PART_FOLDERS]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    # HAM10000's part 1 holds the lower half of the image ids, part 2 the rest.
    first_of_part_2 = FIRST_IMAGE_NUMBER + (images + 1) // 2

    rows = []
    for lesion in lesions:
        look = sample_look(lesion["dx"], np.random.default_rng([seed, 1, lesion["index"]]))
        for view, image_id in enumerate(lesion["image_ids"]):
            rng = np.random.default_rng([seed, 2, lesion["index"], view])
            pixels = render_view(look, view, size, rng)
            folder = folders[int(int(image_id[5:]) >= first_of_part_2)]
            Image.fromarray(pixels).save(
                folder / f"{image_id}.jpg", "JPEG", quality=int(rng.integers(85, 96))
            )
            rows.append(
                [lesion["lesion_id"], image_id, lesion["dx"]]
                + [lesion[name] for name in COLUMNS[3:]]
            )

    csv_path = out / METADATA_NAME
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return csv_path


def write_handful(out: Path, per_class: int, size: int, seed: int) -> Path:
    """A few images of every class, one lesion each, for `smoke`; return the CSV path.

    Unlike `write_synthetic`, no imbalance and no re-imaged lesions: the smallest dataset
    whose lesion split still puts every class into train, val and test.
    """
    if size < MIN_SIZE:
        raise PipelineError(f"--size {size} is too small; use at least {MIN_SIZE} px")
    out = Path(out)
    folder = out / PART_FOLDERS[0]
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(per_class * len(CLASSES)):
        dx = CLASSES[index % len(CLASSES)]
        look = sample_look(dx, np.random.default_rng([seed, 1, index]))
        pixels = render_view(look, 0, size, np.random.default_rng([seed, 2, index]))
        image_id = f"ISIC_{FIRST_IMAGE_NUMBER + index:07d}"
        Image.fromarray(pixels).save(folder / f"{image_id}.jpg", "JPEG", quality=90)
        rows.append([f"HAM_{index:07d}", image_id, dx, "histo", "50", "female", "back", "smoke"])
    csv_path = out / METADATA_NAME
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return csv_path


def main(args: argparse.Namespace) -> int:
    """`python -m training synth`: write the dataset and say what was written."""
    csv_path = write_synthetic(args.out, args.images, args.size, args.seed)
    counts = class_counts(args.images)
    lesions = plan_lesions(args.images, args.seed)
    multi = sum(1 for lesion in lesions if lesion["images"] > 1)
    in_part_1 = (args.images + 1) // 2
    print(
        f"wrote {csv_path}: {args.images} images of {len(lesions)} lesions "
        f"({multi} imaged more than once), {args.size} px, seed {args.seed}"
    )
    print("  per class: " + ", ".join(f"{name} {counts[name]}" for name in CLASSES))
    print(
        f"  JPEGs: {in_part_1} in {args.out / PART_FOLDERS[0]}, "
        f"{args.images - in_part_1} in {args.out / PART_FOLDERS[1]}"
    )
    return 0
