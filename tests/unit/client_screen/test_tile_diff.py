"""Tile geometry, the tile diff and the damage accumulator (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from client.core.screen.damage import DamageAccumulator, changed_rects
from common.screen.geometry import Rect, bounding_box, mask_to_rects, tile_grid, tiles_of


def covered(rects: list[Rect], h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w), np.int32)
    for r in rects:
        out[r.y : r.bottom, r.x : r.right] += 1
    return out


def test_rect_algebra() -> None:
    a, b = Rect(0, 0, 10, 10), Rect(5, 5, 10, 10)
    assert a.intersect(b) == Rect(5, 5, 5, 5)
    assert a.union(b) == Rect(0, 0, 15, 15)
    assert a.intersect(Rect(20, 20, 1, 1)).empty
    assert Rect(0, 0, 0, 0).union(b) == b
    assert Rect(0, 0, 100, 100).contains(b) and not b.contains(a)
    assert Rect(3, 70, 10, 5).align(64, Rect(0, 0, 100, 100)) == Rect(0, 64, 64, 36)
    assert bounding_box([a, b, Rect(0, 0, 0, 0)]) == Rect(0, 0, 15, 15)
    assert tile_grid(1920, 1080) == (17, 30)
    assert tiles_of(Rect(63, 0, 2, 64)) == (slice(0, 1), slice(0, 2))


@given(st.lists(st.lists(st.booleans(), min_size=7, max_size=7), min_size=5, max_size=5))
@settings(max_examples=200, deadline=None)
def test_mask_to_rects_covers_exactly_the_set_tiles(rows: list[list[bool]]) -> None:
    mask = np.array(rows, np.bool_)
    width, height = 7 * 8 - 3, 5 * 8 - 5  # partial last column and row
    rects = mask_to_rects(mask, width, height, tile=8)
    cover = covered(rects, height, width)
    expected = np.kron(mask, np.ones((8, 8), np.int32))[:height, :width]
    assert np.array_equal(cover, expected)  # each set tile once, nothing else


def test_no_change_no_rects() -> None:
    a = np.random.default_rng(0).integers(0, 255, (200, 300, 4), dtype=np.uint8)
    assert changed_rects(a, a.copy()) == []


def test_small_change_gives_a_tight_rect() -> None:
    a = np.zeros((1080, 1920, 4), np.uint8)
    b = a.copy()
    b[500:510, 700:707, 1] = 9  # a typed character
    assert changed_rects(a, b) == [Rect(700, 500, 7, 10)]


def test_two_changes_far_apart() -> None:
    a = np.zeros((720, 1280, 4), np.uint8)
    b = a.copy()
    b[10, 10] = 1
    b[700, 1270] = 1
    assert sorted(changed_rects(a, b)) == [Rect(10, 10, 1, 1), Rect(1270, 700, 1, 1)]


def test_large_change_stays_tile_aligned() -> None:
    a = np.zeros((1080, 1920, 4), np.uint8)
    b = a.copy()
    b[100:900, 100:1800, 0] = 1
    rects = changed_rects(a, b)
    assert bounding_box(rects) == Rect(64, 64, 1792, 896)
    cover = covered(rects, 1080, 1920)
    assert cover.max() == 1
    assert cover[100:900, 100:1800].all()


@given(
    st.integers(1, 150),
    st.integers(1, 150),
    st.lists(st.tuples(st.integers(0, 149), st.integers(0, 149)), max_size=20),
)
@settings(max_examples=150, deadline=None)
def test_every_changed_pixel_is_covered(h: int, w: int, points: list[tuple[int, int]]) -> None:
    a = np.zeros((h, w, 4), np.uint8)
    b = a.copy()
    for y, x in points:
        if y < h and x < w:
            b[y, x, 2] = 7
    rects = changed_rects(a, b, tile=16)
    cover = covered(rects, h, w)
    changed = (a != b).any(axis=2)
    assert (cover[changed] >= 1).all()
    assert all(Rect(0, 0, w, h).contains(r) for r in rects)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        changed_rects(np.zeros((4, 4, 4), np.uint8), np.zeros((4, 5, 4), np.uint8))


def test_works_on_views_into_a_larger_reference() -> None:
    ref = np.zeros((300, 300, 4), np.uint8)
    cur = ref[64:192, 64:256].copy()
    cur[5, 5] = 1
    assert changed_rects(ref[64:192, 64:256], cur) == [Rect(5, 5, 1, 1)]


def test_damage_accumulator() -> None:
    acc = DamageAccumulator(1920, 1080)
    assert not acc.pending and acc.take() == []
    acc.add(Rect(10, 10, 5, 5))
    acc.add(Rect(12, 12, 5, 5))
    acc.add(Rect(-50, -50, 10, 10))  # outside: ignored
    assert acc.pending
    assert acc.take() == [Rect(0, 0, 64, 64)]
    assert not acc.pending
    acc.add(Rect(1900, 1070, 100, 100))
    assert acc.take() == [Rect(1856, 1024, 64, 56)]
    acc.add_all()
    assert acc.take() == [Rect(0, 0, 1920, 1080)]
