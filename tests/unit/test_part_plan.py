"""Cutting a rebuilt version into copied and sent parts (``cosfs.data.part_plan``)."""

import random

import pytest

from cosfs.data.part_plan import PartLimits, Span, grid_spans, plan_spans

MiB = 1024 * 1024
GiB = 1024 * MiB
COS = PartLimits(part_size=8 * MiB, min_part=1 * MiB, max_part=5 * GiB, max_parts=10000, parallel=4)


def check(spans, size, runs, limits=COS):
    """What COS and the rebuild need of any plan."""
    assert spans[0].start == 0 and spans[-1].end == size
    for before, after in zip(spans, spans[1:]):
        assert before.end == after.start, "parts are contiguous"
    for span in spans[:-1]:
        assert span.length >= limits.min_part, f"{span} is below COS's part minimum"
    for span in spans:
        assert 0 < span.length <= limits.max_part
        if span.copy:
            assert any(start <= span.start and span.end <= end for start, end in runs), f"{span} copies written bytes"
    assert len(spans) <= limits.max_parts


def test_appending_1_mib_to_1_gib_is_a_few_copies_and_one_part_of_the_new_bytes():
    spans = plan_spans(GiB + MiB, [(0, GiB)], COS)
    assert [span.copy for span in spans] == [True] * 4 + [False]
    assert spans[-1] == Span(GiB, GiB + MiB, False), "only the appended MiB is sent"
    check(spans, GiB + MiB, [(0, GiB)])


def test_a_4_kib_rewrite_sends_one_minimum_part_and_copies_around_it():
    size, at = 50 * MiB, 20 * MiB + 123
    runs = [(0, at), (at + 4096, size)]
    spans = plan_spans(size, runs, COS)
    sent = [span for span in spans if not span.copy]
    assert sent == [Span(at, at + COS.min_part, False)]
    check(spans, size, runs)


def test_a_copy_run_too_short_to_be_a_part_is_sent():
    runs = [(0, 10 * MiB), (10 * MiB + 10, 10 * MiB + 100)]
    spans = plan_spans(30 * MiB, runs, COS)
    check(spans, 30 * MiB, runs)
    assert not any(span.copy and span.start >= 10 * MiB for span in spans)


def test_a_short_last_copy_may_end_the_version():
    runs = [(0, 20 * MiB), (21 * MiB, 21 * MiB + 100)]
    spans = plan_spans(21 * MiB + 100, runs, COS)
    check(spans, 21 * MiB + 100, runs)


def test_copies_larger_than_a_part_are_cut_at_cos_maximum():
    limits = PartLimits(part_size=8 * MiB, min_part=1 * MiB, max_part=64 * MiB, max_parts=10000, parallel=2)
    spans = plan_spans(1000 * MiB, [(0, 1000 * MiB)], limits)
    assert all(span.copy for span in spans)
    check(spans, 1000 * MiB, [(0, 1000 * MiB)], limits)


def test_too_many_pieces_falls_back_to_none():
    limits = PartLimits(part_size=8 * MiB, min_part=1 * MiB, max_part=5 * GiB, max_parts=5, parallel=4)
    runs = [(start * 4 * MiB, start * 4 * MiB + 3 * MiB) for start in range(20)]
    assert plan_spans(80 * MiB, runs, limits) is None


def test_grid_copies_only_parts_wholly_inside_a_run():
    spans = grid_spans(20 * MiB, 8 * MiB, [(0, 10 * MiB)])
    assert [span.copy for span in spans] == [True, False, False]


@pytest.mark.parametrize("seed", range(300))
def test_random_layouts_give_valid_plans(seed):
    rng = random.Random(seed)
    size = rng.randrange(1, 200 * MiB)
    runs, position = [], 0
    while position < size:
        start = position + rng.choice([0, rng.randrange(1, 3 * MiB)])
        end = min(size, start + rng.choice([rng.randrange(1, 4096), rng.randrange(1, 40 * MiB)]))
        if start < end:
            runs.append((start, end))
        position = end + rng.randrange(1, 2 * MiB)
    limits = PartLimits(part_size=rng.choice([1, 5, 8]) * MiB, min_part=1 * MiB,
                        max_part=rng.choice([16 * MiB, 5 * GiB]), max_parts=10000, parallel=rng.choice([1, 4]))
    spans = plan_spans(size, runs, limits)
    assert spans is not None
    check(spans, size, runs, limits)
