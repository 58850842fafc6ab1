"""The callback step's output-parameter contract (same for every completion path)."""

from __future__ import annotations

TRAIN_DATA_PARAMETER = "s3_data_out"
SCORING_DATA_PARAMETER = "s3_scoring_data"


def success_output_parameters(output_location: str) -> list[dict[str, str]]:
    """OutputParameters for SendPipelineExecutionStepSuccess, derived from the step's output location."""
    prefix = output_location if output_location.endswith("/") else output_location + "/"
    return [
        {"Name": TRAIN_DATA_PARAMETER, "Value": prefix + "train/"},
        {"Name": SCORING_DATA_PARAMETER, "Value": prefix + "scoring/"},
    ]
