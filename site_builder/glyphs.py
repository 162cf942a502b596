"""Generated glyph alphabets: the characters of the introduction's few-shot quiz.

No data set can be downloaded while the site is built, so the build draws its
own "handwritten" alphabets, reproducibly from a seed, in pure numpy:

* An **alphabet** has a small stock of stroke shapes (hooks, bars, arcs, loops,
  zigzags, dots) and a style: angular or round, how many strokes a character
  has, how often a stroke starts where the last one ended, which turns and
  placements it favours.
* A **character** is two to four of its alphabet's strokes, each turned,
  mirrored, scaled and placed on the alphabet's grid. Characters of one
  alphabet share their parts, so telling them apart takes a careful look;
  a character that comes out (nearly) the same as an earlier one is drawn again.
* A **hand** (a drawer) has its own slant, rotation, size, aspect, pen width
  and shakiness, and applies them to every character it draws, with fresh
  jitter for every drawing.

``generate(seed, ...)`` is a pure function from a seed to an array of ink
intensities, ``[alphabet, character, hand, size, size]`` (uint8, 255 = ink), so
that a training step can draw the same alphabets at any resolution (the site
uses 48 px; a conv net would use 28). ``stage_glyphs`` writes the site's copy:
one PNG sprite sheet per alphabet (a row per hand, a column per character) and
``index.json`` describing them, every file written atomically and
byte-identical for the same seed.
"""
from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic

#: The seed, counts and pixel size of the site's alphabets.
GLYPH_SEED = 2017
ALPHABETS = 20
CHARACTERS = 20
HANDS = 5
SIZE = 48
#: Where the site serves them from (relative to the docs folder).
GLYPHS_DIR = "assets/glyphs"
INDEX = "index.json"

# Smallest mean absolute difference (of ink in [0, 1], drawn clean at 24 px)
# between two characters of one alphabet; closer pairs are redrawn.
_MIN_DIFFERENCE = 0.035
_CHECK_SIZE = 24
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "ha", "qui", "dor",
              "an", "el", "ish", "ur", "ba", "fen", "gal", "tor", "yu", "wen", "pra", "xo")


@dataclass(frozen=True)
class Hand:
    """How one drawer deforms every character it draws."""
    slant: float        # horizontal shear (tangent of the slant angle)
    rotation: float     # radians
    scale: float        # overall size (1 = the character's box fills 80% of the cell)
    aspect: float       # width / height stretch
    pen: float          # pen width, as a fraction of the cell
    jitter: float       # shakiness: std of each control point's offset, fraction of the box
    offset: tuple[float, float]  # where the drawer puts the character in the cell


@dataclass(frozen=True)
class Stroke:
    points: np.ndarray  # control points [n, 2] in the character's box, y up
    smooth: bool        # round (smoothed) or angular (corners kept)
    closed: bool


# ------------------------------------------------------------ random streams

def _rng(seed: int, *path: int) -> np.random.Generator:
    """An independent random stream for one (alphabet, character, hand) path,
    so that changing one count never changes the others' drawings."""
    return np.random.default_rng([seed, *path])


# --------------------------------------------------------------- alphabets

@dataclass(frozen=True)
class _Style:
    smooth: float           # probability that a stroke is drawn round
    strokes: tuple[int, int]  # strokes per character (min, max)
    connect: float          # probability that a stroke starts where the last ended
    turns: np.ndarray       # allowed rotations of a part (radians)
    mirror: bool            # parts may be mirrored
    grid: np.ndarray        # anchor points [k, 2]
    parts: tuple[Stroke, ...]


def _part(rng: np.random.Generator, smooth: bool) -> Stroke:
    """One stroke shape of an alphabet, in a box of about [-0.5, 0.5]²."""
    kind = rng.choice(["walk", "walk", "walk", "arc", "loop", "dot"], p=[.25, .2, .15, .2, .12, .08])
    if kind == "dot":
        t = np.linspace(0, 2 * np.pi, 7)[:-1]
        return Stroke(0.06 * np.stack([np.cos(t), np.sin(t)], 1), True, True)
    if kind in ("arc", "loop"):
        span = rng.uniform(1.2, 1.9) * np.pi if kind == "arc" else 2 * np.pi
        start = rng.uniform(0, 2 * np.pi)
        n = 7 if kind == "arc" else 8
        t = start + np.linspace(0, span, n, endpoint=kind == "arc")
        radius = np.array([rng.uniform(0.22, 0.42), rng.uniform(0.18, 0.42)])
        points = radius * np.stack([np.cos(t), np.sin(t)], 1)
        return Stroke(points, True, kind == "loop")
    # A walk: 2 to 4 legs with turns the alphabet's style favours.
    legs = int(rng.integers(2, 5))
    step = 0.55 / legs ** 0.5
    heading = rng.uniform(0, 2 * np.pi)
    point = np.zeros(2)
    points = [point]
    for _ in range(legs):
        point = point + step * rng.uniform(0.7, 1.3) * np.array([np.cos(heading), np.sin(heading)])
        points.append(point)
        heading += rng.choice([-1, 1]) * (rng.choice([np.pi / 2, np.pi / 4, 3 * np.pi / 4])
                                          if not smooth else rng.uniform(0.4, 2.2))
    points = np.array(points)
    return Stroke(points - points.mean(0), smooth, False)


def _style(rng: np.random.Generator) -> _Style:
    smooth = float(rng.choice([0.1, 0.5, 0.9]))
    lo = int(rng.integers(2, 4))
    turns = (np.arange(4) * np.pi / 2 if rng.random() < 0.6 else np.arange(8) * np.pi / 4)
    g = np.array([-0.3, 0.0, 0.3])
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    keep = rng.permutation(len(grid))[: int(rng.integers(5, 10))]
    parts = tuple(_part(rng, bool(rng.random() < smooth)) for _ in range(int(rng.integers(5, 8))))
    return _Style(smooth, (lo, lo + 1 + int(rng.integers(0, 2))), float(rng.uniform(0.1, 0.6)),
                  turns, bool(rng.random() < 0.5), grid[np.sort(keep)], parts)


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _character(rng: np.random.Generator, style: _Style) -> list[Stroke]:
    """Two to four of the alphabet's parts, turned, mirrored, scaled and placed,
    then centred and scaled to fill the box [-0.5, 0.5]²."""
    strokes: list[Stroke] = []
    end = None
    for _ in range(int(rng.integers(style.strokes[0], style.strokes[1] + 1))):
        part = style.parts[int(rng.integers(len(style.parts)))]
        matrix = _rotation(float(rng.choice(style.turns))) * rng.choice([0.7, 1.0, 1.3])
        if style.mirror and rng.random() < 0.5:
            matrix = matrix @ np.diag([-1.0, 1.0])
        points = part.points @ matrix.T
        if end is not None and not part.closed and rng.random() < style.connect:
            points = points - points[0] + end          # pen continues from the last stroke
        else:
            points = points + style.grid[int(rng.integers(len(style.grid)))]
        strokes.append(Stroke(points, part.smooth, part.closed))
        end = points[-1]
    everything = np.concatenate([s.points for s in strokes])
    lo, hi = everything.min(0), everything.max(0)
    extent = max(float((hi - lo).max()), 0.25)
    centre = (lo + hi) / 2
    return [Stroke((s.points - centre) / extent, s.smooth, s.closed) for s in strokes]


# -------------------------------------------------------------------- hands

def _hand(rng: np.random.Generator) -> Hand:
    return Hand(slant=float(rng.uniform(-0.4, 0.4)), rotation=float(rng.uniform(-0.2, 0.2)),
                scale=float(rng.uniform(0.75, 1.0)), aspect=float(rng.uniform(0.75, 1.25)),
                pen=float(rng.uniform(0.04, 0.085)), jitter=float(rng.uniform(0.015, 0.045)),
                offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))))


def _chaikin(points: np.ndarray, closed: bool, rounds: int = 3) -> np.ndarray:
    """Corner cutting: a smooth curve through the control polygon."""
    for _ in range(rounds):
        a = points if closed else points[:-1]
        b = np.roll(points, -1, 0) if closed else points[1:]
        cut = np.empty((2 * len(a), 2))
        cut[0::2] = 0.75 * a + 0.25 * b
        cut[1::2] = 0.25 * a + 0.75 * b
        points = cut if closed else np.concatenate([points[:1], cut, points[-1:]])
    return np.concatenate([points, points[:1]]) if closed else points


def _draw(strokes: list[Stroke], hand: Hand | None, rng: np.random.Generator | None) -> list[np.ndarray]:
    """The polylines a hand draws for a character (box coordinates, y up)."""
    if hand is None:
        matrix, offset, jitter = np.eye(2) * 0.8, np.zeros(2), 0.0
    else:
        shear = np.array([[1.0, hand.slant], [0.0, 1.0]])
        stretch = np.diag([hand.aspect, 1.0]) / max(hand.aspect, 1.0)
        matrix = 0.8 * hand.scale * _rotation(hand.rotation) @ shear @ stretch
        offset, jitter = np.array(hand.offset), hand.jitter
    lines = []
    for stroke in strokes:
        points = stroke.points
        if jitter:
            points = points + rng.normal(0.0, jitter, points.shape)
        line = _chaikin(points, stroke.closed) if stroke.smooth else _densify(points)
        lines.append(line @ matrix.T + offset)
    return lines


def _densify(points: np.ndarray) -> np.ndarray:
    """An angular stroke with a point every quarter leg (keeps the corners)."""
    t = np.linspace(0, 1, 5)[:-1, None]
    legs = points[:-1, None] + t * (points[1:] - points[:-1])[:, None]
    return np.concatenate([legs.reshape(-1, 2), points[-1:]])


# ------------------------------------------------------------ rasterising

def _raster(drawings: list[tuple[list[np.ndarray], float]], size: int) -> np.ndarray:
    """Anti-aliased ink in [0, 1], [len(drawings), size, size], of polylines (box
    coordinates, y up) drawn with a round pen of the given width (a fraction of
    the cell), a little thinner towards the ends of each stroke.

    The strokes are cut into pieces of at most a pixel; every piece inks only
    the pixels of a small disc around it (exact distance to the piece, one
    pixel of soft rim) and the darkest piece wins. One numpy batch for all.
    """
    starts, ends, halves, owners = [], [], [], []
    for index, (lines, pen) in enumerate(drawings):
        for line in lines:
            n = len(line) - 1
            s = (np.arange(n) + 0.5) / n
            starts.append(line[:-1])
            ends.append(line[1:])
            halves.append((0.5 * pen * size) * (0.75 + 0.25 * np.minimum(1.0, 4 * np.minimum(s, 1 - s))))
            owners.append(np.full(n, index))
    # Pixel units: x to the right, y down, pixel (col, row) centred at (col + .5, row + .5).
    to_pixels = np.array([size, -size], np.float32)
    a = (np.concatenate(starts) + [0.5, -0.5]).astype(np.float32) * to_pixels
    b = (np.concatenate(ends) + [0.5, -0.5]).astype(np.float32) * to_pixels
    half, owner = np.concatenate(halves).astype(np.float32), np.concatenate(owners)
    # Cut every segment into pieces of at most one pixel.
    ab = b - a
    pieces = np.maximum(1, np.ceil(np.hypot(ab[:, 0], ab[:, 1]))).astype(np.int64)
    which = np.repeat(np.arange(len(a)), pieces)
    k = np.arange(len(which)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    step = ab[which] / pieces[which, None]
    a = a[which] + k[:, None].astype(np.float32) * step
    half, owner = half[which], owner[which]
    # A disc of pixels around each piece's middle, wide enough for the widest
    # pen: its rim (half + 0.5) plus half a piece plus the rounding to a pixel.
    radius = float(half.max()) + 1.75
    reach = int(np.ceil(radius))
    dx, dy = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1))
    disc = dx * dx + dy * dy <= radius * radius
    dx, dy = dx[disc], dy[disc]
    corner = np.floor(a + 0.5 * step).astype(np.int64)
    cols = corner[:, :1] + dx[None, :]
    rows = corner[:, 1:] + dy[None, :]
    ax = (cols + 0.5).astype(np.float32) - a[:, :1]
    ay = (rows + 0.5).astype(np.float32) - a[:, 1:]
    length2 = np.maximum((step * step).sum(1), 1e-12)[:, None]
    t = np.clip((ax * step[:, :1] + ay * step[:, 1:]) / length2, 0.0, 1.0)
    d = np.hypot(ax - t * step[:, :1], ay - t * step[:, 1:])
    cover = np.clip(half[:, None] - d + 0.5, 0.0, 1.0)
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size) & (cover > 0)
    ink = np.zeros(len(drawings) * size * size, np.float32)
    flat = (owner[:, None] * size + rows) * size + cols
    np.maximum.at(ink, flat[inside], cover[inside])
    return ink.reshape(len(drawings), size, size)


# ----------------------------------------------------------------- the API

def alphabet_characters(seed: int, alphabet: int, characters: int) -> list[list[Stroke]]:
    """The clean strokes of an alphabet's characters: no two look (nearly) alike."""
    rng = _rng(seed, 0, alphabet)
    style = _style(rng)
    chosen: list[list[Stroke]] = []
    clean: list[np.ndarray] = []
    for _ in range(200 * characters):
        if len(chosen) == characters:
            break
        strokes = _character(rng, style)
        image = _raster([(_draw(strokes, None, None), 0.08)], _CHECK_SIZE)[0]
        if all(np.abs(image - other).mean() >= _MIN_DIFFERENCE for other in clean):
            chosen.append(strokes)
            clean.append(image)
    if len(chosen) < characters:
        raise ValueError(f"alphabet {alphabet} of seed {seed}: only {len(chosen)} distinct "
                         f"characters could be drawn, {characters} were asked for")
    return chosen


def hands(seed: int, alphabet: int, count: int) -> list[Hand]:
    """The drawers of one alphabet (each alphabet has its own)."""
    return [_hand(_rng(seed, 1, alphabet, h)) for h in range(count)]


def generate(seed: int = GLYPH_SEED, alphabets: int = ALPHABETS, characters: int = CHARACTERS,
             hand_count: int = HANDS, size: int = SIZE) -> np.ndarray:
    """Ink of every drawing, uint8 [alphabet, character, hand, size, size] (255 = ink).

    A pure function of its arguments: the same seed gives the same array, and
    an alphabet's drawings do not depend on how many alphabets are drawn.
    """
    for name, value in (("alphabets", alphabets), ("characters", characters),
                        ("hand_count", hand_count), ("size", size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return generate_alphabets(seed, range(alphabets), characters, hand_count, size)


def generate_alphabets(seed: int, indices, characters: int = CHARACTERS, hand_count: int = HANDS,
                       size: int = SIZE) -> np.ndarray:
    """Ink of the alphabets numbered ``indices`` (each drawn from its own random
    streams, so alphabet i is the same whatever else is drawn), uint8
    [len(indices), character, hand, size, size]."""
    indices = [int(i) for i in indices]
    for name, value in (("characters", characters), ("hand_count", hand_count), ("size", size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    out = np.empty((len(indices), characters, hand_count, size, size), np.uint8)
    for row, a in enumerate(indices):
        drawers = hands(seed, a, hand_count)
        drawings = [(_draw(strokes, hand, _rng(seed, 2, a, c, h)), hand.pen)
                    for c, strokes in enumerate(alphabet_characters(seed, a, characters))
                    for h, hand in enumerate(drawers)]
        ink = _raster(drawings, size).reshape(characters, hand_count, size, size)
        out[row] = np.round(255 * ink)
    return out


# ------------------------------------------------- the conv nets' alphabets
#
# The quiz's alphabets (numbers 0 .. ALPHABETS-1) are the HELD-OUT alphabets:
# the conv nets are evaluated on them and the reader plays them, but no model
# ever trains on them or chooses a setting with them. Meta-training draws
# BACKGROUND alphabets and settings are chosen on VALIDATION alphabets, from
# their own ranges of alphabet numbers (so their own random streams): the three
# sets never share an alphabet. tests/test_conv.py checks it.

#: Pixel size of the drawings the conv nets see, and that the quiz shows.
MODEL_SIZE = 28
SPLITS = ("background", "validation", "held-out")
_SPLIT_START = {"background": 10_000, "validation": 20_000, "held-out": 0}
_SPLIT_LIMIT = {"background": 10_000, "validation": 10_000, "held-out": ALPHABETS}


def split_indices(split: str, count: int) -> list[int]:
    """The alphabet numbers of the first ``count`` alphabets of a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown alphabet split {split!r}; allowed: {', '.join(SPLITS)}")
    if not isinstance(count, int) or not 1 <= count <= _SPLIT_LIMIT[split]:
        raise ValueError(f"{split} alphabets: count must be an integer from 1 to "
                         f"{_SPLIT_LIMIT[split]}, got {count!r}")
    start = _SPLIT_START[split]
    return list(range(start, start + count))


@functools.lru_cache(maxsize=8)
def split_glyphs(split: str, count: int, characters: int = CHARACTERS, hand_count: int = HANDS,
                 size: int = MODEL_SIZE, seed: int = GLYPH_SEED) -> np.ndarray:
    """uint8 [count, characters, hands, size, size] of a split; read-only, drawn once per process."""
    ink = generate_alphabets(seed, split_indices(split, count), characters, hand_count, size)
    ink.flags.writeable = False
    return ink


def alphabet_name(seed: int, alphabet: int) -> str:
    """A made-up name for an alphabet, e.g. "Torvoze"."""
    rng = _rng(seed, 3, alphabet)
    name = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))
    return name.capitalize()


# ------------------------------------------------------------ site output

def sprite_png(ink: np.ndarray) -> bytes:
    """One alphabet [character, hand, size, size] as a grayscale PNG: dark ink
    on white paper, a row per hand and a column per character."""
    from PIL import Image

    characters, hand_count, size, _ = ink.shape
    sheet = ink.transpose(1, 2, 0, 3).reshape(hand_count * size, characters * size)
    out = io.BytesIO()
    Image.fromarray(255 - sheet, mode="L").save(out, format="PNG", optimize=True)
    return out.getvalue()


@functools.lru_cache(maxsize=2)
def site_glyphs(seed: int = GLYPH_SEED) -> np.ndarray:
    """generate(seed) with the site's counts and size, drawn once per process
    (so that `maml-site serve` rebuilds do not redraw them); read-only."""
    ink = generate(seed)
    ink.flags.writeable = False
    return ink


@functools.lru_cache(maxsize=2)
def site_files(seed: int = GLYPH_SEED) -> dict[str, bytes]:
    """{file name: bytes} of the site's glyph sheets and their index."""
    ink = site_glyphs(seed)
    # The drawings at the conv nets' size: the quiz shows these pixels and
    # hands exactly them to the models that play beside the reader. Only they
    # are shipped (the 48 px sheets were 0.65 MB that no page showed any more).
    small = split_glyphs("held-out", ink.shape[0], ink.shape[1], ink.shape[2], MODEL_SIZE, seed)
    sheets = []
    files: dict[str, bytes] = {}
    for a in range(ink.shape[0]):
        name = f"alphabet-{a + 1:02d}-{MODEL_SIZE}px.png"
        files[name] = sprite_png(small[a])
        sheets.append({"name": alphabet_name(seed, a), "file": name, "model_file": name})
    index = {
        "format": 1,
        "seed": seed,
        "size": MODEL_SIZE,
        "characters": ink.shape[1],
        "hands": ink.shape[2],
        "model_size": MODEL_SIZE,
        "layout": "each sheet has one row per hand and one column per character, size pixels "
                  "square, as the conv nets see them (model_file names the same sheet)",
        "alphabets": sheets,
    }
    files[INDEX] = atomic.dumps_json(index).encode("utf-8")
    return files


def stage_glyphs(docs: Path, seed: int = GLYPH_SEED) -> dict:
    """Write the glyph sheets and index.json under docs/GLYPHS_DIR; returns the index."""
    folder = Path(docs) / GLYPHS_DIR
    files = site_files(seed)
    for name, data in files.items():
        atomic.write_bytes(folder / name, data)
    return json.loads(files[INDEX])
