"""The expiry check's environment, validated once at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline_callback.environment import required_variable


@dataclass(frozen=True)
class ExpiryConfig:
    table_name: str


def load_config(environ: Mapping[str, str]) -> ExpiryConfig:
    return ExpiryConfig(table_name=required_variable(environ, "APPROVAL_TABLE_NAME"))
