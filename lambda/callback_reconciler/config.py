"""The reconciler's environment, validated once at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline_callback.environment import ConfigError, required_variable
from pipeline_callback.token_records import RecordSettings, load_record_settings


@dataclass(frozen=True)
class ReconcilerConfig:
    glue_job_name: str
    # The prep task's cluster (poll mode), to see whether a task still runs; None in events mode.
    cluster_arn: str | None
    records: RecordSettings
    # A step still waiting after this long counts as overdue (the alarm's metric).
    alarm_after_seconds: float
    # A task that stopped this recently is the watchdog's to report (it has the exact stop reason).
    task_stop_grace_seconds: float = 120.0


def load_config(environ: Mapping[str, str]) -> ReconcilerConfig:
    raw_alarm = required_variable(environ, "ALARM_AFTER_SECONDS")
    try:
        alarm_after = float(raw_alarm)
    except ValueError:
        raise ConfigError(f"environment variable ALARM_AFTER_SECONDS must be a number, got {raw_alarm!r}") from None
    return ReconcilerConfig(
        glue_job_name=required_variable(environ, "GLUE_JOB_NAME"),
        cluster_arn=environ.get("CLUSTER_ARN", "").strip() or None,
        records=load_record_settings(environ),
        alarm_after_seconds=alarm_after,
    )
