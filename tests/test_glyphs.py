"""The generated glyph alphabets of the introduction's quiz (site_builder/glyphs.py).

What the quiz needs from them: enough alphabets, characters and hands; the
same pictures for the same seed, byte for byte; hands that really draw
differently; characters of one alphabet that really differ; a site copy
small enough to serve and quick enough to build. The tests that draw the
site's full set (a few seconds) are marked slow.
"""
from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest

from site_builder import glyphs

MAX_SITE_BYTES = 2 * 1024 * 1024
MAX_SECONDS = 30.0


@pytest.fixture(scope="module")
def ink() -> np.ndarray:
    return glyphs.site_glyphs()


def _ink01(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) / 255.0


@pytest.mark.slow
def test_counts_and_shape(ink):
    alphabets, characters, hands, height, width = ink.shape
    assert alphabets >= 20 and characters >= 20 and hands >= 5
    assert (height, width) == (glyphs.SIZE, glyphs.SIZE)
    assert ink.dtype == np.uint8


@pytest.mark.slow
def test_every_drawing_has_ink_and_stays_in_its_cell(ink):
    amount = ink.reshape(*ink.shape[:3], -1).astype(np.float64).sum(-1) / 255.0
    # At least a short stroke's worth of ink (a 48 px cell holds 2304 pixels).
    assert amount.min() > 40, f"a drawing is nearly empty ({amount.min():.0f} pixels of ink)"
    border = np.concatenate([ink[..., 0, :], ink[..., -1, :], ink[..., :, 0], ink[..., :, -1]], axis=-1)
    assert (border > 128).mean() < 0.01, "drawings run off their cells"


def test_same_seed_same_array_other_seed_other_array():
    first = glyphs.generate(7, alphabets=2, characters=20, hand_count=5)
    again = glyphs.generate(7, alphabets=2, characters=20, hand_count=5)
    other = glyphs.generate(8, alphabets=2, characters=20, hand_count=5)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first.astype(int) - other.astype(int)).mean() > 10


@pytest.mark.slow
def test_an_alphabet_does_not_depend_on_how_many_are_drawn(ink):
    np.testing.assert_array_equal(glyphs.generate(glyphs.GLYPH_SEED, alphabets=2), ink[:2])


def test_any_resolution_for_a_training_step():
    small = glyphs.generate(glyphs.GLYPH_SEED, alphabets=1, characters=20, hand_count=5, size=28)
    assert small.shape == (1, 20, 5, 28, 28)
    assert small.max() == 255


@pytest.mark.slow
def test_hands_draw_each_character_differently(ink):
    worst = 1.0
    for a, c in itertools.product(range(ink.shape[0]), range(ink.shape[1])):
        drawings = _ink01(ink[a, c])
        for h, k in itertools.combinations(range(ink.shape[2]), 2):
            worst = min(worst, np.abs(drawings[h] - drawings[k]).mean())
    # Two hands' drawings of a character differ by at least 2% of the cell's ink.
    assert worst > 0.02, f"two hands drew a character almost identically ({worst:.3f})"


def _blurred_unit_vectors(ink: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Each drawing blurred (Gaussian, sigma pixels) and scaled to unit length:
    [..., pixels]."""
    size = ink.shape[-1]
    r = np.arange(size)
    blur = np.exp(-((r[:, None] - r[None, :]) ** 2) / (2 * sigma ** 2))
    blur /= blur.sum(1, keepdims=True)
    smooth = np.einsum("ij,...jk,lk->...il", blur, _ink01(ink), blur).reshape(*ink.shape[:-2], -1)
    return smooth / np.linalg.norm(smooth, axis=-1, keepdims=True)


@pytest.mark.slow
def test_rounds_are_answerable_but_not_by_matching_pixels(ink):
    """20-way 1-shot rounds answered by the most similar blurred picture (one
    hand's drawings as the support set, another's as queries). Far above chance
    (5%) in every alphabet, so the characters do differ; but well short of
    perfect, so telling the hands apart from the characters takes more than
    comparing pixels."""
    vectors = _blurred_unit_vectors(ink)                 # [alphabet, character, hand, pixels]
    alphabets, characters, hands = vectors.shape[:3]
    per_alphabet = []
    for a in range(alphabets):
        right = []
        for support, query in itertools.permutations(range(hands), 2):
            similarity = vectors[a, :, query] @ vectors[a, :, support].T
            right.append((similarity.argmax(1) == np.arange(characters)).mean())
        per_alphabet.append(np.mean(right))
    print(f"\n20-way 1-shot by blurred-pixel matching: {np.mean(per_alphabet):.0%} "
          f"(alphabets {min(per_alphabet):.0%} to {max(per_alphabet):.0%})")
    assert min(per_alphabet) > 0.25
    assert 0.4 < np.mean(per_alphabet) < 0.95


def test_characters_share_their_alphabets_parts():
    """Characters are built from a small stock of parts per alphabet, so the
    same stroke shape recurs: fewer distinct parts than strokes."""
    for a in range(3):
        characters = glyphs.alphabet_characters(glyphs.GLYPH_SEED, a, glyphs.CHARACTERS)
        strokes = sum(len(c) for c in characters)
        assert strokes >= 2 * len(characters)
        assert len(glyphs._style(glyphs._rng(glyphs.GLYPH_SEED, 0, a)).parts) <= 8 < strokes


@pytest.mark.slow
def test_site_files_are_small_quick_and_byte_identical(tmp_path):
    started = time.perf_counter()
    files = glyphs.site_files.__wrapped__(glyphs.GLYPH_SEED)      # not the process cache
    seconds = time.perf_counter() - started
    total = sum(len(data) for data in files.values())
    print(f"\nglyph alphabets: {len(files) - 1} sheets, {total / 1024:.0f} KiB, "
          f"drawn and encoded in {seconds:.1f} s")
    assert seconds <= MAX_SECONDS
    assert total <= MAX_SITE_BYTES
    again = glyphs.site_files.__wrapped__(glyphs.GLYPH_SEED)
    assert again == files, "the same seed gave different bytes"

    index = glyphs.stage_glyphs(tmp_path)
    folder = tmp_path / glyphs.GLYPHS_DIR
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    assert json.loads((folder / glyphs.INDEX).read_text()) == index
    assert index["characters"] >= 20 and index["hands"] >= 5 and len(index["alphabets"]) >= 20
    names = [a["name"] for a in index["alphabets"]]
    assert len(set(names)) == len(names), "two alphabets share a name"
    for entry in index["alphabets"]:
        assert (folder / entry["file"]).read_bytes() == files[entry["file"]]


@pytest.mark.slow
def test_a_sheet_has_a_row_per_hand_and_a_column_per_character(ink):
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(glyphs.sprite_png(ink[3])))
    characters, hands, size = ink.shape[1], ink.shape[2], ink.shape[3]
    assert image.mode == "L" and image.size == (characters * size, hands * size)
    sheet = np.asarray(image)
    c, h = 11, 4
    np.testing.assert_array_equal(255 - sheet[h * size:(h + 1) * size, c * size:(c + 1) * size], ink[3, c, h])


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="characters must be a positive integer"):
        glyphs.generate(0, characters=0)
