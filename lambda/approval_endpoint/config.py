"""The endpoint's environment, validated once at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline_callback.environment import required_variable


@dataclass(frozen=True)
class EndpointConfig:
    table_name: str


def load_config(environ: Mapping[str, str]) -> EndpointConfig:
    return EndpointConfig(table_name=required_variable(environ, "APPROVAL_TABLE_NAME"))
