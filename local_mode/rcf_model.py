"""SageMaker's built-in Random Cut Forest, emulated with AWS's own RCF library (krcf).

Training reads the `train` channel (headerless CSV, every column a feature, as `text/csv;label_size=0`
means), samples `num_samples_per_tree` points per tree and writes `model.tar.gz` holding the forest's
serialized state. Scoring gives one anomaly score per record, like the RCF endpoint's `{"score": x}`.
Batch transform's DataProcessing (InputFilter, JoinSource=Input, OutputFilter) is applied with a generic
JSONPath subset over CSV rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import krcf
import numpy as np

MODEL_ARCHIVE_NAME = "model.tar.gz"
_FOREST_MEMBER = "rcf_forest.msgpack"
_PARAMETERS_MEMBER = "hyperparameters.json"
# Fixed so a local run is reproducible; SageMaker's RCF seeds randomly.
FOREST_SEED = 42
# SageMaker RCF defaults for the hyperparameters a definition may omit.
DEFAULT_NUM_TREES = 100
DEFAULT_NUM_SAMPLES_PER_TREE = 256


class ModelError(ValueError):
    """Training or scoring cannot proceed; the message says why, as the training/transform job would."""


@dataclass(frozen=True)
class RcfHyperparameters:
    feature_dim: int
    num_trees: int
    num_samples_per_tree: int

    @classmethod
    def from_definition(cls, hyperparameters: dict[str, str]) -> RcfHyperparameters:
        """RCF takes its hyperparameters as strings; feature_dim is required."""
        if "feature_dim" not in hyperparameters:
            raise ModelError("hyperparameter feature_dim is required by Random Cut Forest")
        try:
            return cls(
                feature_dim=int(hyperparameters["feature_dim"]),
                num_trees=int(hyperparameters.get("num_trees", DEFAULT_NUM_TREES)),
                num_samples_per_tree=int(hyperparameters.get("num_samples_per_tree", DEFAULT_NUM_SAMPLES_PER_TREE)),
            )
        except ValueError as error:
            raise ModelError(f"Random Cut Forest hyperparameters must be integers: {error}") from None


def read_feature_rows(files: Iterable[Path], feature_dim: int) -> np.ndarray:
    """All rows of headerless CSV files as a (rows, feature_dim) float array."""
    blocks = []
    for path in files:
        if path.stat().st_size == 0:
            continue
        block = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
        if block.shape[1] != feature_dim:
            raise ModelError(f"{path.name} has {block.shape[1]} columns, but feature_dim is {feature_dim}")
        blocks.append(block)
    if not blocks:
        raise ModelError("the train channel has no records")
    return np.vstack(blocks)


def train_forest(points: np.ndarray, parameters: RcfHyperparameters) -> krcf.RandomCutForest:
    """Batch training: each tree keeps a uniform sample of the points (no time decay), as SageMaker's RCF does."""
    options: dict[str, Any] = {
        "dimensions": parameters.feature_dim,
        "shingle_size": 1,  # the prep job already shingled the series
        "num_trees": parameters.num_trees,
        "sample_size": parameters.num_samples_per_tree,
        "output_after": 1,
        "random_seed": FOREST_SEED,
        # No time decay: a uniform reservoir sample. (krcf's TypedDict cannot spell the key `lambda`.)
        "lambda": 0.0,
    }
    forest = krcf.RandomCutForest(cast(krcf.RandomCutForestOptions, options))
    for point in points:
        forest.update(point)
    return forest


def write_model_archive(forest: krcf.RandomCutForest, parameters: RcfHyperparameters, archive: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        _add_member(tar, _FOREST_MEMBER, forest.to_msgpack())
        _add_member(tar, _PARAMETERS_MEMBER, json.dumps(parameters.__dict__).encode())


def load_model_archive(archive: Path) -> krcf.RandomCutForest:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(_FOREST_MEMBER)
        if member is None:
            raise ModelError(f"{archive.name} has no {_FOREST_MEMBER}: not a local-mode RCF model")
        return krcf.RandomCutForest.from_msgpack(member.read())


def _add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


# JSONPath, the subset SageMaker batch transform documents for CSV: `$`, or `$[...]` holding a comma
# separated list of indices (negative count from the end) and slices `start:stop[:step]`.
_BRACKETED = re.compile(r"^\$\[(?P<items>[^\[\]]+)\]$")
_INDEX = re.compile(r"^-?\d+$")
_SLICE = re.compile(r"^(?P<start>-?\d*):(?P<stop>-?\d*)(?::(?P<step>-?\d+))?$")


class UnsupportedJsonPathError(ValueError):
    """A JSONPath outside the subset local mode implements."""


def select_columns(row: Sequence[str], json_path: str) -> list[str]:
    """Apply a transform filter such as `$[2:]` or `$[0,1,-1]` to one CSV row's columns."""
    expression = json_path.strip()
    if expression == "$":
        return list(row)
    match = _BRACKETED.match(expression)
    if not match:
        raise UnsupportedJsonPathError(
            f"JSONPath {json_path!r} is not supported on CSV rows in local mode (use $ or $[indices/slices])"
        )
    selected: list[str] = []
    for item in (part.strip() for part in match.group("items").split(",")):
        if _INDEX.match(item):
            index = int(item)
            if not -len(row) <= index < len(row):
                raise ModelError(f"JSONPath {json_path!r}: index {index} is outside a row of {len(row)} columns")
            selected.append(row[index])
            continue
        slice_match = _SLICE.match(item)
        if not slice_match:
            raise UnsupportedJsonPathError(f"JSONPath {json_path!r}: item {item!r} is not an index or a slice")
        start, stop, step = (int(value) if value else None for value in slice_match.group("start", "stop", "step"))
        if step == 0:
            raise UnsupportedJsonPathError(f"JSONPath {json_path!r}: a slice step cannot be 0")
        selected.extend(row[start:stop:step])
    return selected


@dataclass(frozen=True)
class DataProcessing:
    input_filter: str = "$"
    output_filter: str = "$"
    join_source: str = "None"

    def __post_init__(self) -> None:
        if self.join_source not in ("None", "Input"):
            raise ModelError(f"JoinSource must be None or Input, got {self.join_source!r}")


def transform_csv_lines(
    lines: Iterable[str], forest: krcf.RandomCutForest, processing: DataProcessing
) -> Iterable[list[str]]:
    """Score each CSV record: filter its input, score it, join with the input, filter the output."""
    dimensions = forest.dimensions()
    for line_number, row in enumerate(csv.reader(lines), start=1):
        if not row:
            continue
        features = select_columns(row, processing.input_filter)
        if len(features) != dimensions:
            raise ModelError(
                f"record {line_number} has {len(features)} features after InputFilter "
                f"{processing.input_filter!r}; the model expects {dimensions}"
            )
        try:
            point = np.array(features, dtype=np.float64)
        except ValueError:
            raise ModelError(f"record {line_number} has non-numeric features: {features[:3]}...") from None
        # Accept text/csv: RCF answers with the score alone for each record.
        prediction = [f"{forest.score(point):.6f}"]
        joined = row + prediction if processing.join_source == "Input" else prediction
        yield select_columns(joined, processing.output_filter)
