"""Random Cut Forest's documented hyperparameter ranges, checked before anything is built or started.

From "RCF Hyperparameters" (Amazon SageMaker Developer Guide):

- ``feature_dim``: "The number of features in the data set. Required. Valid values: Positive integer
  (min: 1, max: 10000)"
- ``num_samples_per_tree``: "Number of random samples given to each tree from the training data set.
  Optional. Valid values: Positive integer (min: 1, max: 2048). Default value: 256"
- ``num_trees``: "Number of trees in the forest. Optional. Valid values: Positive integer (min: 50,
  max: 1000). Default value: 100"

A value outside them fails the training job only after the pipeline has run its prep step; these checks
fail it where the definition is built (synth, the local mode) and where the CLI starts an execution.
"""

from __future__ import annotations

from collections.abc import Mapping

# name -> (min, max), both inclusive, as documented.
RCF_HYPERPARAMETER_RANGES: Mapping[str, tuple[int, int]] = {
    "feature_dim": (1, 10_000),
    "num_samples_per_tree": (1, 2048),
    "num_trees": (50, 1000),
}


class HyperparameterError(ValueError):
    """A hyperparameter value outside Random Cut Forest's documented range; the message names it."""


def check_rcf_hyperparameter(name: str, value: object, *, source: str | None = None) -> int:
    """The value as an int, when it is one within the documented range of ``name``."""
    if name not in RCF_HYPERPARAMETER_RANGES:
        raise HyperparameterError(f"{name} is not a Random Cut Forest hyperparameter this pipeline sets")
    low, high = RCF_HYPERPARAMETER_RANGES[name]
    label = f"{source} ({name})" if source else name
    if isinstance(value, bool):
        raise HyperparameterError(f"{label} must be an integer from {low} to {high}, got {value!r}")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise HyperparameterError(f"{label} must be an integer from {low} to {high}, got {value!r}") from None
    if not low <= number <= high:
        raise HyperparameterError(
            f"{label} must be from {low} to {high} (Random Cut Forest's valid values), got {number}"
        )
    return number


def check_rcf_hyperparameters(values: Mapping[str, object]) -> dict[str, int]:
    """Check each given hyperparameter; returns them as ints."""
    return {name: check_rcf_hyperparameter(name, value) for name, value in values.items()}
