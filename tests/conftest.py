"""Settings every test session needs before any test module is imported."""

from __future__ import annotations

import os

# Node 20 makes the CDK's jsii runtime print an 11-line end-of-life banner when aws_cdk is first imported;
# `make test` reports the Node version once (check-node). Set before any test module imports aws_cdk.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
