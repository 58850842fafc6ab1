"""A Python Lambda function built from `lambda/<package>/` without Docker.

Each function lives in its own package under `lambda/` with a `requirements.txt`.
At synth the package (plus any shared top-level packages such as
`pipeline_callback`) is copied into the asset with its requirements, installed
with pip for the Lambda platform (manylinux wheels only), so no Docker engine
is needed. The installed requirements are cached per requirements hash
(`cdk_constructs/lambda_dependencies.py`): synth reaches the package registry
only for a requirements set it has not installed before. Tests skip bundling
through the standard `aws:cdk:bundling-stacks` context, so they never touch
the network.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, Duration, ILocalBundling, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_constructs.checker_skips import (
    LOG_GROUP_SERVICE_ENCRYPTION,
    NO_RESERVED_CONCURRENCY,
    NO_SECRETS_IN_ENVIRONMENT,
    NO_VPC_NEEDED,
    OWN_LOG_GROUP_HAS_RETENTION,
    skip_cfn_lint,
    skip_checkov,
)
from cdk_constructs.lambda_dependencies import CACHE_ROOT, PYTHON_VERSION, cached_dependencies
from cdk_constructs.nag import acknowledge
from cdk_constructs.service_roles import service_principal

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SOURCE_ROOT = REPO_ROOT / "lambda"
# The newest Python runtime Lambda offers (cdk-nag AwsSolutions-L1 checks this).
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
assert LAMBDA_RUNTIME.name == f"python{PYTHON_VERSION}", "the dependency cache must target the runtime's Python"
# FunctionSpec.failed_invocations for a function EventBridge invokes, whose failures go to a queue
# (PythonFunction.send_failed_events_to).
EVENTBRIDGE_FAILURES_TO_QUEUE = (
    "Invoked asynchronously by EventBridge; after Lambda's retries a failed event goes to the "
    "function's on-failure destination (an alarmed SQS queue) with the error, not to a DLQ."
)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", "tests")


def _source_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def source_hash(package_dirs: Sequence[Path]) -> str:
    """Hash of every source file that goes into the asset (names and contents)."""
    digest = hashlib.sha256()
    for directory in package_dirs:
        for path in _source_files(directory):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class _PipForLambdaBundler:
    """Copies the packages and the requirements, pip-installed for the Lambda platform (cached per hash)."""

    def __init__(self, package_dirs: Sequence[Path], requirements: Path | None, cache_root: Path = CACHE_ROOT) -> None:
        self._package_dirs = list(package_dirs)
        self._requirements = requirements
        self._cache_root = cache_root

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        out = Path(output_dir)
        if self._requirements is not None and self._requirements.read_text().strip():
            installed = cached_dependencies(self._requirements, self._cache_root)
            shutil.copytree(installed, out, dirs_exist_ok=True)
        for directory in self._package_dirs:
            shutil.copytree(directory, out / directory.name, dirs_exist_ok=True, ignore=_IGNORED)
        return True


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between our functions; everything else is a shared default."""

    package: str
    handler: str = "handler.lambda_handler"
    description: str = ""
    environment: Mapping[str, str] | None = None
    timeout_seconds: int = 30
    memory_size: int = 256
    shared_packages: tuple[str, ...] = ()
    reserved_concurrency: int | None = None
    # Why the function needs no Lambda dead-letter queue (checkov CKV_AWS_116): how its failed
    # invocations are caught instead. None leaves the finding for the gate to report.
    failed_invocations: str | None = None


class PythonFunction(Construct):
    """Lambda function + its own log group with explicit retention + Powertools settings."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        log_retention_days: int,
        destroy_logs_with_stack: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        package_dir = LAMBDA_SOURCE_ROOT / spec.package
        if not package_dir.is_dir():
            raise ValueError(f"no Lambda package at {package_dir}")
        shared_dirs = [REPO_ROOT / name for name in spec.shared_packages]
        requirements = package_dir / "requirements.txt"
        all_dirs = [package_dir, *shared_dirs]

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=_retention(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY if destroy_logs_with_stack else RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=service_principal(self, "lambda.amazonaws.com"),
            description=f"Runs the {spec.package} Lambda function",
        )
        # Logging permission scoped to this function's own log group (no managed policy).
        self.log_group.grant_write(self.role)

        self.function = lambda_.Function(
            self,
            "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=f"{spec.package}.{spec.handler}",
            code=lambda_.Code.from_asset(
                str(package_dir),
                asset_hash=source_hash(all_dirs),
                bundling=BundlingOptions(
                    # Only used if local bundling were declined; ours never declines.
                    image=LAMBDA_RUNTIME.bundling_image,
                    local=_PipForLambdaBundler(all_dirs, requirements if requirements.exists() else None),
                    command=["false"],
                ),
            ),
            description=spec.description,
            environment={
                "POWERTOOLS_SERVICE_NAME": spec.package,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(spec.environment or {}),
            },
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_size,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=spec.reserved_concurrency,
        )
        skip_checkov(self.function, "CKV_AWS_117", NO_VPC_NEEDED)
        skip_checkov(self.function, "CKV_AWS_173", NO_SECRETS_IN_ENVIRONMENT)
        skip_checkov(self.log_group, "CKV_AWS_158", LOG_GROUP_SERVICE_ENCRYPTION)
        skip_cfn_lint(self.function, "WS1004", OWN_LOG_GROUP_HAS_RETENTION)
        if spec.reserved_concurrency is None:
            skip_checkov(self.function, "CKV_AWS_115", NO_RESERVED_CONCURRENCY)
        if spec.failed_invocations is not None:
            skip_checkov(self.function, "CKV_AWS_116", spec.failed_invocations)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "X-Ray tracing (PutTraceSegments/PutTelemetryRecords) and, where granted, ecs:ListTasks (scoped by an "
            "ecs:cluster condition) accept no resource-level permissions.",
            ["Resource::*"],
        )

    def send_failed_events_to(self, queue: sqs.IQueue, max_event_age: Duration) -> None:
        """Asynchronous invocations (EventBridge's): after Lambda's two retries, or once an event is older
        than ``max_event_age``, the event goes to ``queue`` (alarmed by the caller) with its error."""
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(queue), retry_attempts=2, max_event_age=max_event_age
        )


_RETENTION_BY_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    if days not in _RETENTION_BY_DAYS:
        valid = ", ".join(str(d) for d in _RETENTION_BY_DAYS)
        raise ValueError(f"log_retention_days={days} is not a CloudWatch Logs retention; use one of {valid}")
    return _RETENTION_BY_DAYS[days]


def retention_days(days: int) -> logs.RetentionDays:
    """Public for other constructs' log groups (ECS, Glue) to share one mapping."""
    return _retention(days)
