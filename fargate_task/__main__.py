"""`python -m fargate_task`: the container's entry point."""

from __future__ import annotations

import logging
import os
import sys

import boto3

from fargate_task.runner import main


def run() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
    # Plain clients: boto3 honours AWS_ENDPOINT_URL_GLUE / AWS_ENDPOINT_URL_SAGEMAKER when they are set.
    return main(os.environ, glue=boto3.client("glue"), sagemaker=boto3.client("sagemaker"))


if __name__ == "__main__":
    sys.exit(run())
