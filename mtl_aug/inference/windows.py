"""Pure functions for windowed inference: window boundaries and window-to-utterance aggregation.

A recording of ``n`` samples is cut into windows of ``window`` samples every ``hop`` samples:

* ``n <= window``: ONE window covering the whole recording (it is not padded: the model masks
  padding, so a short file is classified exactly as it is);
* otherwise windows start at ``0, hop, 2*hop, ...`` as long as they fit, and a last window is
  aligned to the END of the file (``[n - window, n)``) if the regular grid does not already end
  there. Every sample is covered, every window has exactly ``window`` samples, and the last window
  may overlap its predecessor by more than ``window - hop``.

The utterance-level result is the (unweighted) mean of the window probabilities: every window has
the same length, so each gets the same vote; the predicted emotion is the arg-max of that mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def window_bounds(n_samples: int, window: int, hop: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` sample boundaries (end exclusive) of the windows of a recording."""
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got window={window}, hop={hop}")
    if n_samples <= window:
        return [(0, n_samples)]
    n_regular = (n_samples - window) // hop + 1  # windows of the regular grid that fit entirely
    bounds = [(i * hop, i * hop + window) for i in range(n_regular)]
    if bounds[-1][1] < n_samples:
        bounds.append((n_samples - window, n_samples))
    return bounds


def seconds_to_samples(seconds: float, sample_rate: int) -> int:
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"window/hop must be a positive number of seconds, got {seconds}")
    return max(1, int(round(seconds * sample_rate)))


def window_bounds_seconds(n_samples: int, sample_rate: int, window_s: float, hop_s: float) -> list[tuple[int, int]]:
    """:func:`window_bounds` with the window and hop given in seconds."""
    return window_bounds(n_samples, seconds_to_samples(window_s, sample_rate), seconds_to_samples(hop_s, sample_rate))


def cut_windows(wave: Tensor, bounds: Sequence[tuple[int, int]]) -> tuple[Tensor, Tensor]:
    """Stack the windows of a 1-D ``wave`` into ``[W, max_len]`` (zero-padded) + ``lengths [W]``."""
    lengths = torch.tensor([e - s for s, e in bounds], dtype=torch.long)
    out = wave.new_zeros((len(bounds), int(lengths.max())))
    for i, (s, e) in enumerate(bounds):
        out[i, : e - s] = wave[s:e]
    return out, lengths


def aggregate(window_probs: Tensor) -> Tensor:
    """Utterance probabilities ``[C]`` from window probabilities ``[W, C]``: their mean."""
    if window_probs.dim() != 2 or window_probs.size(0) == 0:
        raise ValueError(f"expected window probabilities [W, C] with W >= 1, got {tuple(window_probs.shape)}")
    return window_probs.mean(dim=0)
