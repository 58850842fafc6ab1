"""Typed, validated per-environment configuration (built once in app.py)."""

from app_config.settings import (
    ApprovalConfig,
    ConfigError,
    DataPrepConfig,
    EnvironmentConfig,
    MeasureSpec,
    OperationsConfig,
    PipelineConfig,
    StreamingConfig,
    load_environment,
    stack_name,
)

__all__ = [
    "ApprovalConfig",
    "ConfigError",
    "DataPrepConfig",
    "EnvironmentConfig",
    "MeasureSpec",
    "OperationsConfig",
    "PipelineConfig",
    "StreamingConfig",
    "load_environment",
    "stack_name",
]
