"""Fargate prep task: runs the Glue job for one callback step and reports the outcome to SageMaker."""
