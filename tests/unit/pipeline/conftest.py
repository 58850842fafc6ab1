"""Makes the ml_pipeline fixtures available to every test in this folder."""

from pipeline_support import (  # noqa: F401 - pytest finds fixtures by name
    captured,
    cloudformation,
    no_aws_and_no_network,
    sagemaker,
    sleep,
)
