"""The cut-off: the score at and above which a window is anomalous, computed from the run's own scores.

Random Cut Forest's scores have no fixed scale: they depend on the data the forest was trained on, the
number of features and the sample size, so a fixed threshold (or "the top 5") means something different
on every run. The cut-off is therefore derived from the run's score distribution, the same way for every
series, with no per-dataset setting:

1. Split the windows into consecutive blocks of one day (shorter blocks when the series spans fewer than
   ``MIN_BLOCKS`` days, so that there are always ``MIN_BLOCKS`` of them) and take each block's highest score.
   Every block of an ordinary series has its own noise peak; a day with an anomaly has a higher one.
2. The typical block maximum is the median of those maxima, and their spread is the median absolute
   deviation (scaled by 1.4826, so it estimates a standard deviation), both robust to the few blocks that
   hold anomalies.
3. ``cut-off = typical block maximum + spreads x spread``, where ``spreads`` grows with the number of
   blocks: ``CUTOFF_SPREADS_PER_LN_BLOCK x ln(blocks)`` (3.1 for a month of days, 2.4 for two weeks, 3.8
   for ten weeks). The cut-off must stand above the highest ordinary peak of the run, and the highest of
   ``n`` block maxima lies further above their median the more blocks there are: block maxima have an
   exponential upper tail (Gumbel), so the largest of ``n`` grows like ``ln n`` spreads. A fixed number
   of spreads is therefore too strict on a short run and too loose on a long one.
4. The cut-off is raised when needed so that at most ``CUTOFF_MAX_SHARE`` of the windows lie above it
   (the score quantile at ``1 - CUTOFF_MAX_SHARE``): a series whose every day is spiky does not flood its
   reader with flags. The share cap raises it at most to ``typical + CUTOFF_CAP_LIMIT x spreads x
   spread``: a long anomaly puts many windows above the cut-off, and without the limit those windows
   alone would lift the cut-off above a second, shorter anomaly of the same run however far that one
   stands above every ordinary daily peak.

A window is flagged when its score is at or above the cut-off. An event (see ``events``) also takes in the
neighbouring windows at or above ``typical + EXTEND_SPREADS x spread``, so it covers all of an anomaly's
high-scoring windows, not only those above the cut-off. So a series in which no day stands out
gets no flag at all, however its scores are scaled, and one whose anomalies are far above its ordinary
daily peaks gets them flagged. Where the block maxima do not vary at all (every score identical), nothing
stands out and the cut-off lies just above the highest score.

``relative_scores`` maps scores onto 0..1 on the same footing for every series: 0.5 at the cut-off,
rising with the number of spreads above it (a logistic of ``(score - cut-off) / spread``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

DAY_SECONDS = 86_400.0
MIN_BLOCKS = 7
# How many spreads above the typical block maximum a score must be (per natural log of the number of
# blocks: 0.9 x ln 31 = 3.1 for a month of daily blocks), the largest share of windows the cut-off may
# flag, and how far the share cap may raise the cut-off (a multiple of the spreads term: 2.25 x 3.1 =
# 7.0 spreads for a month). Chosen once, on the shared development set and the local taxi data (see the
# README's "The pipeline model", which also shows how the results move with them).
CUTOFF_SPREADS_PER_LN_BLOCK = 0.9
CUTOFF_MAX_SHARE = 0.01
CUTOFF_CAP_LIMIT = 2.25
# ``spreads=None`` (the default): CUTOFF_SPREADS_PER_LN_BLOCK x ln(blocks); a number fixes it.
CUTOFF_SPREADS: float | None = None
# An event extends over the neighbouring windows that score at least this many spreads above the typical
# block maximum (see pipeline_evaluation.events.merge_events).
EXTEND_SPREADS = 2.0
_MAD_TO_STANDARD_DEVIATION = 1.4826


@dataclass(frozen=True)
class ScoreCutoff:
    """The cut-off and the statistics it came from."""

    value: float
    typical_block_max: float
    block_spread: float
    spreads: float
    blocks: int
    block_seconds: float
    max_share: float = CUTOFF_MAX_SHARE
    capped: bool = False  # True when the share cap, not the spreads, set the value
    # The share cap raises the value to at most typical + cap_limit x spreads x spread.
    cap_limit: float = CUTOFF_CAP_LIMIT
    limited: bool = False  # True when the share cap was held at that limit
    extend_value: float = math.inf  # neighbours at or above this join an event (never above value)

    def describe(self) -> str:
        block = "day" if self.block_seconds == DAY_SECONDS else f"{self.block_seconds / 3600:g} h block"
        if self.block_spread == 0:
            return f"cut-off {self.value:.4f}: every {block} has the same highest score, so no window stands out"
        if self.limited:  # implies capped
            return (
                f"cut-off {self.value:.4f} = typical highest score per {block} {self.typical_block_max:.4f} "
                f"+ {self.cap_limit:g} x {self.spreads:.2f} x spread {self.block_spread:.4f} "
                f"(the top {self.max_share:.0%} of scores lie higher, but a score this far above the typical peak "
                f"is anomalous; {self.blocks} blocks)"
            )
        if self.capped:
            return (
                f"cut-off {self.value:.4f}: the top {self.max_share:.0%} of scores (above the typical highest "
                f"score per {block} {self.typical_block_max:.4f} + {self.spreads:.2f} x spread {self.block_spread:.4f})"
            )
        return (
            f"cut-off {self.value:.4f} = typical highest score per {block} {self.typical_block_max:.4f} "
            f"+ {self.spreads:.2f} x spread {self.block_spread:.4f} ({self.blocks} blocks)"
        )

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "value": self.value,
            "typical_block_max": self.typical_block_max,
            "block_spread": self.block_spread,
            "spreads": self.spreads,
            "blocks": self.blocks,
            "block_seconds": self.block_seconds,
            "max_share": self.max_share,
            "capped": self.capped,
            "cap_limit": self.cap_limit,
            "limited": self.limited,
            "extend_value": self.extend_value,
        }


def _epoch_seconds(window_starts: Sequence[datetime]) -> np.ndarray:
    return np.array([start.timestamp() for start in window_starts], dtype=np.float64)


def block_length_seconds(epoch_seconds: np.ndarray) -> float:
    """One day, or duration / MIN_BLOCKS for a series shorter than MIN_BLOCKS days (never below one window)."""
    if len(epoch_seconds) < 2:
        return DAY_SECONDS
    gaps = np.diff(epoch_seconds)
    gaps = gaps[gaps > 0]
    spacing = float(np.median(gaps)) if len(gaps) else DAY_SECONDS
    # The series covers its first start to the end of its last window.
    duration = float(epoch_seconds[-1] - epoch_seconds[0]) + spacing
    if duration >= MIN_BLOCKS * DAY_SECONDS:
        return DAY_SECONDS
    return max(spacing, duration / MIN_BLOCKS)


def block_maxima(epoch_seconds: np.ndarray, scores: np.ndarray, block_seconds: float) -> np.ndarray:
    """The highest score of each block of ``block_seconds``, blocks counted from the first window."""
    blocks = np.floor((epoch_seconds - epoch_seconds[0]) / block_seconds).astype(np.int64)
    order = np.argsort(blocks, kind="stable")
    boundaries = np.flatnonzero(np.diff(blocks[order])) + 1
    return np.array([chunk.max() for chunk in np.split(scores[order], boundaries)])


def cutoff_spreads(blocks: int) -> float:
    """The default number of spreads for a run of ``blocks`` blocks: CUTOFF_SPREADS_PER_LN_BLOCK x ln(blocks)."""
    return CUTOFF_SPREADS_PER_LN_BLOCK * math.log(max(blocks, 2))


def _spread(values: np.ndarray) -> float:
    median = float(np.median(values))
    spread = _MAD_TO_STANDARD_DEVIATION * float(np.median(np.abs(values - median)))
    if spread > 0:
        return spread
    # More than half the blocks share one maximum: the mean deviation still sees the blocks that differ.
    return float(np.mean(np.abs(values - median)))


def score_cutoff(
    window_starts: Sequence[datetime],
    scores: Sequence[float],
    *,
    spreads: float | None = CUTOFF_SPREADS,
    max_share: float = CUTOFF_MAX_SHARE,
    extend_spreads: float = EXTEND_SPREADS,
    cap_limit: float = CUTOFF_CAP_LIMIT,
) -> ScoreCutoff:
    """The cut-off for one run's scores (``window_starts`` in time order, one score each; ties allowed).

    ``spreads`` None: ``cutoff_spreads(blocks)``. ``cap_limit`` ``math.inf``: the share cap alone.
    """
    if len(window_starts) != len(scores):
        raise ValueError(f"{len(window_starts)} window starts for {len(scores)} scores")
    if not scores:
        raise ValueError("no scores: the cut-off needs at least one window")
    values = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite numbers")
    epoch_seconds = _epoch_seconds(window_starts)
    if np.any(np.diff(epoch_seconds) < 0):
        raise ValueError("window starts must be in time order")
    block_seconds = block_length_seconds(epoch_seconds)
    maxima = block_maxima(epoch_seconds, values, block_seconds)
    typical = float(np.median(maxima))
    spread = _spread(maxima) if len(maxima) > 1 else 0.0
    if not 0 < max_share <= 1:
        raise ValueError(f"max_share must be in (0, 1], got {max_share}")
    if not cap_limit >= 1:
        raise ValueError(f"cap_limit must be at least 1, got {cap_limit}")
    if spreads is None:
        spreads = cutoff_spreads(len(maxima))
    capped = limited = False
    if spread > 0:
        value = typical + spreads * spread
        share_cap = float(np.quantile(values, 1.0 - max_share))
        limit = typical + cap_limit * spreads * spread
        if share_cap > limit:
            share_cap, limited = limit, True
        if share_cap > value:
            value, capped = share_cap, True
        limited = limited and capped
        extend_value = min(value, typical + extend_spreads * spread)
    else:
        # With no spread every block peaks alike: nothing stands out, so the cut-off lies above every score.
        value = math.nextafter(float(values.max()), math.inf)
        extend_value = value
    return ScoreCutoff(
        value=value,
        typical_block_max=typical,
        block_spread=spread,
        spreads=spreads,
        blocks=len(maxima),
        block_seconds=block_seconds,
        max_share=max_share,
        capped=capped,
        cap_limit=cap_limit,
        limited=limited,
        extend_value=extend_value,
    )


def flag_windows(scores: Sequence[float], cutoff: ScoreCutoff) -> tuple[bool, ...]:
    """True for every window whose score is at or above the cut-off."""
    return tuple(bool(score >= cutoff.value) for score in scores)


def elevated_windows(scores: Sequence[float], cutoff: ScoreCutoff) -> tuple[bool, ...]:
    """True for every window whose score is at or above the extension level (flagged ones included)."""
    return tuple(bool(score >= cutoff.extend_value) for score in scores)


def relative_scores(scores: Sequence[float], cutoff: ScoreCutoff) -> tuple[float, ...]:
    """Scores on a 0..1 scale shared by every run: 0.5 at the cut-off, higher the further above it."""
    values = np.asarray(scores, dtype=np.float64)
    if cutoff.block_spread == 0:
        return tuple(0.0 for _ in range(len(values)))
    spreads_above = (values - cutoff.value) / cutoff.block_spread
    return tuple(float(value) for value in 1.0 / (1.0 + np.exp(-np.clip(spreads_above, -50, 50))))
