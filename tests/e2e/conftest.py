"""The e2e suite runs the local mode in-process, so all runs share one local SparkSession."""

from __future__ import annotations

import pytest

from local_mode.spark_session import java_available


@pytest.fixture(autouse=True, scope="session")
def _require_java() -> None:
    if not java_available():
        pytest.skip("Java 17 is needed for local Spark")
