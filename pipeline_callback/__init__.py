"""Shared code for answering SageMaker Pipelines callback steps.

Used by the callback-handler, task-watchdog and glue-completion Lambdas and by the
Fargate prep task, so it depends on boto3/botocore only (no Powertools).
"""
