"""SageMaker's built-in Random Cut Forest, emulated with AWS's own RCF library (krcf).

Training reads the `train` channel (headerless CSV, every column a feature, as `text/csv;label_size=0`
means), samples `num_samples_per_tree` points per tree and writes `model.tar.gz` holding the forest's
serialized state. Hyperparameters outside RCF's documented ranges fail the job, as they fail SageMaker's.

Scoring answers each record the way RCF documents: `{"score": x}` per record for Accept
application/jsonlines. Requests are text/csv rows or application/jsonlines records in RCF's dense JSON
Lines form (`{"features": [...]}` or `{"data": {"features": {"values": [...]}}}`); anything else fails the
record, as the algorithm would. Batch transform's DataProcessing (InputFilter, JoinSource, OutputFilter) is
applied with the JSONPath subset SageMaker documents: indices and slices on CSV rows, `$`, `.name` and
`['a','b']` on JSON records; the join follows the DataProcessing reference (below).
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

from ml_pipeline.rcf_hyperparameters import HyperparameterError, check_rcf_hyperparameters

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
        """RCF takes its hyperparameters as strings; feature_dim is required; each within RCF's valid values."""
        if "feature_dim" not in hyperparameters:
            raise ModelError("hyperparameter feature_dim is required by Random Cut Forest")
        given = {
            "feature_dim": hyperparameters["feature_dim"],
            "num_trees": hyperparameters.get("num_trees", str(DEFAULT_NUM_TREES)),
            "num_samples_per_tree": hyperparameters.get("num_samples_per_tree", str(DEFAULT_NUM_SAMPLES_PER_TREE)),
        }
        try:
            checked = check_rcf_hyperparameters(given)
        except HyperparameterError as error:
            raise ModelError(f"ClientError: invalid hyperparameter: {error}") from None
        return cls(**checked)


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
        "shingle_size": 1,  # each row is already a whole feature vector (krcf shingles nothing)
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


# JSONPath, the subset SageMaker batch transform documents ("Supported JSONPath Operators"): on CSV rows
# "each row is taken as a JSON array, so only index based JSONPaths can be applied, e.g. $[0], $[1:]";
# on JSON records `$`, `.name` children and `['a','b']` bracket-notated children.
_BRACKETED = re.compile(r"^\$\[(?P<items>[^\[\]]+)\]$")
_INDEX = re.compile(r"^-?\d+$")
_SLICE = re.compile(r"^(?P<start>-?\d*):(?P<stop>-?\d*)(?::(?P<step>-?\d+))?$")
_DOTTED = re.compile(r"^\$(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
_NAMES = re.compile(r"^\$\[(?P<names>'[^']*'(?:\s*,\s*'[^']*')*)\]$")

# What RCF documents (RCF Response Formats; Common Data Formats for Inference). Local mode emulates the
# JSON Lines answer; the others are documented but not emulated.
RCF_RESPONSE_TYPES = ("application/json", "application/jsonlines", "application/x-recordio-protobuf")
RCF_REQUEST_TYPES = ("text/csv", "application/json", "application/jsonlines", "application/x-recordio-protobuf")
CSV = "text/csv"
JSON_LINES = "application/jsonlines"
# "For JSON files, the attribute name SageMakerOutput is reserved for output."
JOINED_OUTPUT_KEY = "SageMakerOutput"
JOINED_INPUT_KEY = "SageMakerInput"


class UnsupportedJsonPathError(ValueError):
    """A JSONPath outside the subset local mode implements."""


def select_columns(row: Sequence[str], json_path: str) -> list[str]:
    """Apply a transform filter such as `$[2:]` or `$[0,1,-1]` to one CSV row's columns."""
    expression = json_path.strip()
    if expression == "$":
        return list(row)
    match = _BRACKETED.match(expression)
    if not match or "'" in match.group("items"):
        raise UnsupportedJsonPathError(
            f"JSONPath {json_path!r} is not supported on CSV rows (use $ or $[indices/slices])"
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


def select_json(record: Any, json_path: str) -> Any:
    """Apply a filter such as `$`, `$.rcf_input` or `$['id','SageMakerOutput']` to one JSON record."""
    expression = json_path.strip()
    if expression == "$":
        return record
    if _DOTTED.match(expression):
        current = record
        for name in expression[2:].split("."):
            if not isinstance(current, dict) or name not in current:
                raise ModelError(f"JSONPath {json_path!r} selects nothing: the record has no {name!r}")
            current = current[name]
        return current
    names_match = _NAMES.match(expression)
    if names_match:
        names = [name.strip().strip("'") for name in names_match.group("names").split(",")]
        if not isinstance(record, dict):
            raise ModelError(f"JSONPath {json_path!r} needs a JSON object, got {type(record).__name__}")
        missing = [name for name in names if name not in record]
        if missing:
            raise ModelError(f"JSONPath {json_path!r}: the record has no {', '.join(map(repr, missing))}")
        if len(names) == 1:
            return record[names[0]]
        return {name: record[name] for name in names}
    raise UnsupportedJsonPathError(
        f"JSONPath {json_path!r} is not supported on JSON records in local mode (use $, $.name or $['a','b'])"
    )


@dataclass(frozen=True)
class DataProcessing:
    input_filter: str = "$"
    output_filter: str = "$"
    join_source: str = "None"

    def __post_init__(self) -> None:
        if self.join_source not in ("None", "Input"):
            raise ModelError(f"JoinSource must be None or Input, got {self.join_source!r}")


def rcf_request_features(request: Any, where: str) -> list[Any]:
    """The feature values of one RCF JSON Lines request (dense formats only), or ModelError."""
    if isinstance(request, dict) and isinstance(request.get("features"), list):
        return list(request["features"])
    data = request.get("data") if isinstance(request, dict) else None
    features = data.get("features") if isinstance(data, dict) else None
    if isinstance(features, dict) and isinstance(features.get("values"), list) and "keys" not in features:
        return list(features["values"])
    raise ModelError(
        f"{where} is not a Random Cut Forest JSON Lines request: expected {{\"features\": [...]}} or "
        f'{{"data": {{"features": {{"values": [...]}}}}}}, got {json.dumps(request)[:120]}'
    )


def _point(values: Sequence[Any], dimensions: int, where: str) -> np.ndarray:
    if len(values) != dimensions:
        raise ModelError(f"{where} has {len(values)} features; the model expects {dimensions}")
    if any(isinstance(value, bool) for value in values):
        raise ModelError(f"{where} has non-numeric features")
    try:
        point = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelError(f"{where} has non-numeric features: {list(values)[:3]}...") from None
    if not np.all(np.isfinite(point)):
        raise ModelError(f"{where} has features that are not finite numbers")
    return point


def _join(record: Any, answer: dict[str, float], where: str) -> Any:
    """JoinSource Input for JSON: "SageMaker adds the transformed data to the input JSON object in an attribute
    called SageMakerOutput ... If the input is not a key-value pair object, SageMaker creates a new JSON file
    ... the input data is stored under the SageMakerInput key" (DataProcessing)."""
    if not isinstance(record, dict):
        return {JOINED_INPUT_KEY: record, JOINED_OUTPUT_KEY: answer}
    if JOINED_OUTPUT_KEY in record:
        # SageMaker would overwrite it ("The JSON input file can't have an attribute with this name").
        raise ModelError(f"{where} already has the reserved attribute {JOINED_OUTPUT_KEY}")
    return {**record, JOINED_OUTPUT_KEY: answer}


def transform_records(
    lines: Iterable[str], forest: krcf.RandomCutForest, processing: DataProcessing, content_type: str
) -> Iterable[str]:
    """Score each record of a text/csv or application/jsonlines input; yield one JSON Lines answer each."""
    dimensions = forest.dimensions()
    if content_type == CSV:
        if processing.join_source == "Input":
            raise ModelError("a CSV input cannot be joined with RCF's JSON Lines answer: formats must match")
        for line_number, row in enumerate(csv.reader(lines), start=1):
            if row:
                where = f"record {line_number}"
                point = _point(select_columns(row, processing.input_filter), dimensions, where)
                yield json.dumps(select_json({"score": round(forest.score(point), 6)}, processing.output_filter))
        return
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"record {line_number}"
        try:
            record = json.loads(line)
        except ValueError:
            raise ModelError(f"{where} is not JSON: {line[:80]!r}") from None
        request = select_json(record, processing.input_filter)
        point = _point(rcf_request_features(request, where), dimensions, where)
        answer = {"score": round(forest.score(point), 6)}
        joined = _join(record, answer, where) if processing.join_source == "Input" else answer
        yield json.dumps(select_json(joined, processing.output_filter), separators=(",", ":"))
