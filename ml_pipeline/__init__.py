"""The taxi anomaly SageMaker Pipeline: its definition, the RCF image lookup and an operator CLI.

Importing this package is cheap: the SageMaker SDK is only imported inside the builder functions.
"""

from ml_pipeline.definition import (
    DEFINITION_PLACEHOLDERS,
    PipelineSettings,
    build_pipeline,
    pipeline_definition,
    placeholder,
)
from ml_pipeline.rcf_image import rcf_image_uri

__all__ = [
    "DEFINITION_PLACEHOLDERS",
    "PipelineSettings",
    "build_pipeline",
    "pipeline_definition",
    "placeholder",
    "rcf_image_uri",
]
