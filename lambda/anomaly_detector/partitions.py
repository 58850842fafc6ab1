"""Hash partitions of the detector's series: which partition scores a series, where its state lives, and
merging the partitions' scores into one interval's (pure functions; no I/O).

Beyond what one invocation can hold (see the README's "Scale"), the series are split into ``P`` partitions
(``streaming.detector_partitions``): partition ``p`` keeps the models of its own series only, in
``<state_key stem>.part-<p>-of-<P>.json`` next to the single state file, and scores them; a final step
merges the partitions' scores and forms the groups (which need every series of a measure at once).

A series' partition is a stable hash of its key (SHA-256, not Python's ``hash``, which is salted per process
and would move series between runs). Changing ``P`` re-deals every series; the new partitions' state files
have another name, so they start empty and are rebuilt from the stored intervals like a lost state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TypeVar

MAX_PARTITIONS = 64
ScoreT = TypeVar("ScoreT")


# A partition run looks its series up in every interval it learns (hundreds of intervals x thousands of keys).
@lru_cache(maxsize=1 << 17)
def partition_of(series_key: str, partitions: int) -> int:
    """The partition (0..partitions-1) that scores ``series_key``; the same on every run and machine."""
    _check(partitions)
    digest = hashlib.sha256(series_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def split_totals(totals: Mapping[str, float], partitions: int) -> list[dict[str, float]]:
    """An interval's totals, one dict per partition (each series in exactly one)."""
    parts: list[dict[str, float]] = [{} for _ in range(partitions)]
    for key, value in totals.items():
        parts[partition_of(key, partitions)][key] = value
    return parts


def partition_state_key(state_key: str, partition: int, partitions: int) -> str:
    """``metrics/detector-state/history.json`` -> ``metrics/detector-state/history.part-3-of-8.json``.

    With one partition it is the state key itself, so ``detector_partitions: 1`` keeps today's file.
    """
    _check(partitions)
    if not 0 <= partition < partitions:
        raise ValueError(f"partition must be 0..{partitions - 1}, got {partition}")
    if partitions == 1:
        return state_key
    folder, slash, name = state_key.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, "json"
    return f"{folder}{slash}{stem}.part-{partition}-of-{partitions}.{extension}"


def merge_partition_scores(partition_scores: Sequence[Iterable[ScoreT]], key: str = "dimension_value") -> list[ScoreT]:
    """Every partition's scores for one interval as one list, ordered by series key (as one state would).

    A series scored by two partitions means two runs disagreed on the partitioning (a changed
    ``detector_partitions`` mid-interval): that is an error, not something to paper over.
    """
    merged: dict[str, ScoreT] = {}
    for scores in partition_scores:
        for score in scores:
            series = str(getattr(score, key))
            if series in merged:
                raise ValueError(f"series {series!r} was scored by two partitions")
            merged[series] = score
    return [merged[series] for series in sorted(merged)]


def _check(partitions: int) -> None:
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be 1..{MAX_PARTITIONS}, got {partitions}")
