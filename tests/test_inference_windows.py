"""Window boundaries and aggregation (pure functions)."""

from __future__ import annotations

import pytest
import torch

from mtl_aug.inference.windows import aggregate, cut_windows, window_bounds, window_bounds_seconds


def _covered(bounds: list[tuple[int, int]], n: int) -> bool:
    seen = torch.zeros(n, dtype=torch.bool)
    for s, e in bounds:
        seen[s:e] = True
    return bool(seen.all())


@pytest.mark.parametrize("n", [1, 99, 100, 101, 150, 250, 299, 300, 301, 1000, 1037])
def test_windows_cover_the_file_last_aligned_to_the_end(n):
    window, hop = 100, 50
    bounds = window_bounds(n, window, hop)
    assert _covered(bounds, n)
    assert bounds[0][0] == 0 and bounds[-1][1] == n  # starts at 0, ends exactly at the end
    assert all(0 <= s < e <= n for s, e in bounds)
    starts = [s for s, _ in bounds]
    assert starts == sorted(set(starts))  # increasing, no duplicate window
    if n <= window:
        assert bounds == [(0, n)]  # a short file is ONE window, not padded
    else:
        assert all(e - s == window for s, e in bounds)  # every window full length
        # the regular grid, plus (only if needed) one window aligned to the end
        assert all(b[0] == i * hop for i, b in enumerate(bounds[:-1]))
        assert bounds[-1][0] - bounds[-2][0] <= hop


def test_exact_grid_adds_no_extra_window():
    assert window_bounds(300, 100, 50) == [(0, 100), (50, 150), (100, 200), (150, 250), (200, 300)]
    assert window_bounds(320, 100, 50)[-2:] == [(200, 300), (220, 320)]


def test_seconds_and_sixty_second_file():
    sr = 16000
    bounds = window_bounds_seconds(60 * sr, sr, 4.0, 2.0)
    assert len(bounds) == 29 and bounds[-1] == (56 * sr, 60 * sr)
    assert window_bounds_seconds(3 * sr, sr, 4.0, 2.0) == [(0, 3 * sr)]
    assert window_bounds_seconds(4 * sr, sr, 4.0, 2.0) == [(0, 4 * sr)]  # exactly one window long
    # hop larger than the window leaves gaps on the grid but the end is still covered
    b = window_bounds_seconds(10 * sr, sr, 1.0, 4.0)
    assert b[-1][1] == 10 * sr


@pytest.mark.parametrize("bad", [(0, 10, 5), (10, 0, 5), (10, 5, 0), (-1, 5, 5)])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        window_bounds(*bad)
    with pytest.raises(ValueError):
        window_bounds_seconds(100, 16000, float("nan"), 1.0)


def test_cut_windows_and_aggregate():
    wave = torch.arange(10, dtype=torch.float32)
    chunk, lengths = cut_windows(wave, [(0, 4), (6, 10), (8, 10)])
    assert chunk.shape == (3, 4) and lengths.tolist() == [4, 4, 2]
    assert chunk[1].tolist() == [6, 7, 8, 9] and chunk[2].tolist() == [8, 9, 0, 0]  # zero padded
    probs = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    assert torch.allclose(aggregate(probs), torch.tensor([0.4, 0.6]))
    with pytest.raises(ValueError):
        aggregate(torch.zeros(0, 2))
