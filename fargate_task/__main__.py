"""`python -m fargate_task`: the container's entry point."""

from __future__ import annotations

import logging
import os
import sys

import boto3

from fargate_task.runner import main
from pipeline_callback.clients import client_config


def run() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # its endpoint-discovery lines are noise here
    # boto3 honours AWS_ENDPOINT_URL_GLUE / _SAGEMAKER / _DYNAMODB when they are set (the local mode).
    return main(
        os.environ,
        glue=boto3.client("glue", config=client_config("glue")),
        sagemaker=boto3.client("sagemaker", config=client_config("sagemaker")),
        dynamodb=boto3.client("dynamodb", config=client_config("dynamodb")),
    )


if __name__ == "__main__":
    sys.exit(run())
