"""Typed, validated per-environment configuration (built once in app.py)."""

from app_config.settings import (
    AnomalyTarget,
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
    "AnomalyTarget",
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
