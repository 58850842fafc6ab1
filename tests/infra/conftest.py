"""Session fixtures: each environment variant synthesized once."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_synth import Synthesized, synth

_INFRA_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every infrastructure test synthesizes whole apps (with cdk-nag): slow, so `make unit` skips them."""
    for item in items:
        if _INFRA_TESTS in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def dev() -> Synthesized:
    return synth("dev", "poll")


@pytest.fixture(scope="session")
def prod() -> Synthesized:
    return synth("prod", "poll")


@pytest.fixture(scope="session")
def dev_events() -> Synthesized:
    return synth("dev", "events")


@pytest.fixture(scope="session", params=["dev", "prod", "dev_events"])
def every_variant(request: pytest.FixtureRequest) -> Synthesized:
    return request.getfixturevalue(request.param)
