#!/usr/bin/env python3
"""CDK entry point: the only place that reads the environment choice and CDK_DEFAULT_* variables."""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from app_config import ConfigError, EnvironmentConfig, load_environment
from stacks.app_stacks import build_stacks


def config_from_context(app: cdk.App) -> EnvironmentConfig:
    env_name = app.node.try_get_context("env") or "dev"
    try:
        return load_environment(
            app.node.try_get_context("environments") or {},
            env_name,
            default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            default_region=os.environ.get("CDK_DEFAULT_REGION"),
        )
    except ConfigError as error:
        raise SystemExit(f"cdk.json configuration error: {error}") from error


def main() -> None:
    app = cdk.App()
    config = config_from_context(app)
    build_stacks(app, config)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    app.synth()


if __name__ == "__main__":
    main()
