"""The interval set behind sparse staging: merged, clipped and queried like a list of bytes."""

from __future__ import annotations

import random

import pytest

from cosfs.data.extents import Extents


def covered(extents: Extents, size: int) -> list:
    model = [False] * size
    for start, end in extents:
        for index in range(start, end):
            model[index] = True
    return model


def test_touching_and_overlapping_ranges_merge():
    extents = Extents([(10, 20), (30, 40)])
    extents.add(20, 30)
    assert list(extents) == [(10, 40)]
    extents.add(0, 5)
    extents.add(5, 10)
    assert list(extents) == [(0, 40)]
    extents.add(50, 60)
    extents.add(45, 55)
    assert list(extents) == [(0, 40), (45, 60)]


def test_an_empty_range_adds_nothing_and_a_bad_one_is_refused():
    extents = Extents()
    extents.add(7, 7)
    assert list(extents) == []
    with pytest.raises(ValueError):
        extents.add(9, 3)


def test_clip_cuts_and_drops():
    extents = Extents([(0, 10), (20, 30), (40, 50)])
    extents.clip(25)
    assert list(extents) == [(0, 10), (20, 25)]
    extents.clip(20)
    assert list(extents) == [(0, 10)]
    extents.clip(0)
    assert list(extents) == []


def test_pieces_cover_the_range_in_order():
    extents = Extents([(10, 20), (30, 40)])
    assert extents.pieces(5, 35) == [(5, 10, False), (10, 20, True), (20, 30, False), (30, 35, True)]
    assert extents.pieces(12, 18) == [(12, 18, True)]
    assert extents.pieces(40, 45) == [(40, 45, False)]
    assert extents.overlaps(19, 30) and not extents.overlaps(20, 30)


def test_random_operations_match_a_byte_model():
    rng = random.Random(11)
    size = 300
    for _ in range(50):
        extents, model = Extents(), [False] * size
        for _ in range(40):
            start = rng.randrange(size)
            end = min(size, start + rng.randrange(40))
            if rng.random() < 0.15:
                extents.clip(start)
                model[start:] = [False] * (size - start)
            else:
                extents.add(start, end)
                model[start:end] = [True] * (end - start)
            assert covered(extents, size) == model
            starts_and_ends = [edge for run in extents for edge in run]
            assert starts_and_ends == sorted(starts_and_ends) and len(set(starts_and_ends)) == len(starts_and_ends)
        assert extents.total == sum(model)
        assert Extents(extents.to_list()) == extents
