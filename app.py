#!/usr/bin/env python3
"""CDK entry point: the only place that reads the environment choice and CDK_DEFAULT_* variables."""

from __future__ import annotations

import os
import sys

# Node 20 (still common, past its end of life) makes the CDK's jsii runtime print an 11-line banner on every
# synth; `make` says it once in one line instead (see check-node). Must be set before aws_cdk starts jsii.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

try:
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks
except ModuleNotFoundError as missing:  # cdk.json runs `python app.py` in whatever environment is active
    sys.exit(
        f"app.py needs the packages in requirements.txt ({missing}). Use `make synth`, or activate an "
        "environment that has them: `make install`, then `source .venv/bin/activate` "
        "(Windows: `.venv\\Scripts\\activate`), or `pip install -r requirements.txt`."
    )

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
