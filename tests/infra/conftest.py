"""Session fixtures: each environment variant synthesized once."""

from __future__ import annotations

import pytest
from infra_synth import Synthesized, synth


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
