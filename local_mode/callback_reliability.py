"""The callback path's durable record and its reconciler, locally.

- The token table lives in moto's DynamoDB server on loopback (local_mode.dynamodb_server), created
  with the deployed table's shape (local_mode.token_table). The Fargate task's subprocess reaches it
  through AWS_ENDPOINT_URL_DYNAMODB, the in-process Lambdas through an endpoint_url.
- The reconciler Lambda's logic runs every few seconds in a thread, as its schedule runs it in AWS
  (every data_prep.reconcile_every_minutes): it ends steps whose completion event was lost
  (``--drop-events``) and stops Glue runs whose step has ended.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from app_config.settings import DataPrepConfig
from local_mode.dynamodb_server import DynamoDbServer, loopback_dynamodb
from local_mode.local_compute import FAKE_CREDENTIALS, LocalEcs, LocalEndpoints
from local_mode.progress import Progress
from local_mode.token_table import create_token_table
from pipeline_callback.clients import client_config
from pipeline_callback.token_records import RecordSettings, TokenRecords

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE_PREFIX = "taxi-callback-tokens-local"
# The deployed reconciler runs every few minutes; locally every few seconds, so a demo ends promptly.
LOCAL_RECONCILE_SECONDS = 2.0
LOCAL_TASK_STOP_GRACE_SECONDS = 5.0


@dataclass
class CallbackRecords:
    server: DynamoDbServer
    settings: RecordSettings
    region: str = "us-east-1"

    def client(self) -> DynamoDBClient:
        return boto3.client(
            "dynamodb",
            region_name=self.region,
            endpoint_url=self.server.endpoint_url,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=client_config("dynamodb"),
        )

    def records(self) -> TokenRecords:
        return self.settings.records(self.client())

    def task_environment(self) -> dict[str, str]:
        """What a function or the task gets: the table's settings, and (locally) where DynamoDB is."""
        return {
            **self.server.environment(),
            "CALLBACK_TABLE_NAME": self.settings.table_name,
            "CALLBACK_DEADLINE_SECONDS": f"{self.settings.deadline_seconds:g}",
            "CALLBACK_RECORD_TTL_DAYS": f"{self.settings.ttl_seconds / 86400:g}",
            "START_LEASE_SECONDS": f"{self.settings.lease_seconds:g}",
        }


@contextmanager
def local_callback_records(data_prep: DataPrepConfig, progress: Progress) -> Iterator[CallbackRecords]:
    # moto keeps its tables per process, not per server: each run gets a table of its own, dropped after.
    table_name = f"{TABLE_PREFIX}-{uuid.uuid4().hex[:8]}"
    with loopback_dynamodb() as server:
        settings = RecordSettings(
            table_name=table_name,
            deadline_seconds=data_prep.callback_deadline_minutes * 60.0,
            ttl_seconds=data_prep.callback_record_ttl_days * 86400.0,
            lease_seconds=data_prep.handler_timeout_seconds + 60.0,
        )
        records = CallbackRecords(server, settings)
        create_token_table(records.client(), table_name)
        progress.say("aws", f"loopback DynamoDB (moto server) at {server.endpoint_url}: table {table_name}")
        try:
            yield records
        finally:
            records.client().delete_table(TableName=table_name)


@dataclass
class ReconcilerLoop:
    """The reconciler Lambda's logic on a short local schedule."""

    endpoints: LocalEndpoints
    records: CallbackRecords
    glue_job_name: str
    ecs: LocalEcs | None
    progress: Progress
    interval_seconds: float = LOCAL_RECONCILE_SECONDS
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.run_once()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.run_once()

    def run_once(self) -> None:
        from callback_reconciler.config import ReconcilerConfig
        from callback_reconciler.logic import ReconcilerClients, reconcile

        from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

        config = ReconcilerConfig(
            glue_job_name=self.glue_job_name,
            cluster_arn=f"arn:aws:ecs:{self.endpoints.region}:000000000000:cluster/local" if self.ecs else None,
            records=self.records.settings,
            alarm_after_seconds=self.records.settings.deadline_seconds,
            task_stop_grace_seconds=LOCAL_TASK_STOP_GRACE_SECONDS,
        )
        ecs: Any = self.ecs
        clients = ReconcilerClients(
            sagemaker=self.endpoints.sagemaker(), glue=self.endpoints.glue(), records=self.records.records(), ecs=ecs
        )
        try:
            summary = reconcile(config, clients, Retrier(policy=LAMBDA_RETRY_POLICY))
        except Exception as error:  # a failed pass must not take the run down; the next one tries again
            self.progress.say("reconciler", f"ERROR: {error}")
            return
        for token, action in summary.actions.items():
            if not action.startswith("waiting"):
                self.progress.say("reconciler", f"token {token}: {action}")
        for token, error_text in summary.errors.items():
            self.progress.say("reconciler", f"token {token}: ERROR {error_text}")
