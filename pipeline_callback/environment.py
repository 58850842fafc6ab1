"""Environment variables read at cold start by the Lambdas and the Fargate task."""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


def required_variable(environ: Mapping[str, str], name: str) -> str:
    """The variable's value, stripped; a missing or blank one is a ConfigError naming it."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required and must not be empty")
    return value
