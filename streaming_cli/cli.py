"""`python -m streaming_cli {feedback,groups}`: label anomaly groups and list recent ones.

    python -m streaming_cli feedback revenue-low-20261202T1405Z --not-anomaly --env dev [--note TEXT]
    python -m streaming_cli feedback revenue-low-20261202T1405Z --anomaly --out out
    python -m streaming_cli groups --since 24 --env dev

``--out DIR`` works on the local mode's out folder (``DIR/streaming/`` mirrors the bucket's ``metrics/``);
``--env NAME`` on the deployed environment: the data bucket is the storage stack's ``MetricsBucketName``
output, in the environment's region from cdk.json unless ``--region`` says otherwise. Expected problems
(unknown group, missing stack, no credentials) print one line and exit 2, as ``python -m ml_pipeline`` does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anomaly_detector.alerts import where
from anomaly_detector.feedback import (
    FeedbackError,
    FeedbackLabel,
    FeedbackStore,
    LocalFeedbackStore,
    S3FeedbackStore,
    Verdict,
    check_group_id,
    latest_by_group,
)

from app_config import stack_name
from ml_pipeline.cli import CliError, cdk_environments, describe_aws_error, environment_region
from streaming_cli.group_records import (
    ANOMALIES,
    BUCKET_ROOT,
    FEEDBACK,
    LOCAL_ROOT,
    GroupFiles,
    GroupRecordError,
    LocalGroupFiles,
    S3GroupFiles,
    records_of_group,
    records_since,
)

BUCKET_OUTPUT_KEY = "MetricsBucketName"
DEFAULT_SINCE_HOURS = 24.0
EXIT_OK = 0
EXIT_ERROR = 2

Clock = Callable[[], datetime]
PrintLine = Callable[[str], None]


@dataclass(frozen=True)
class Sources:
    """Where this run reads groups and reads/writes labels."""

    groups: GroupFiles
    labels: FeedbackStore


def local_sources(out: Path) -> Sources:
    root = out / LOCAL_ROOT
    if not root.is_dir():
        raise CliError(f"{root} does not exist: run `make local` first, or pass the --out folder it wrote")
    return Sources(LocalGroupFiles(root / ANOMALIES.rstrip("/")), LocalFeedbackStore(root / FEEDBACK.rstrip("/")))


def resolve_data_bucket(cloudformation: Any, env_name: str) -> str:
    """The metrics (data) bucket's name, from the storage stack's outputs."""
    from botocore.exceptions import ClientError

    name = stack_name(env_name, "storage")
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in str(error):
            raise CliError(
                f"stack {name} does not exist in {cloudformation.meta.region_name}: deploy it with "
                f"`make deploy ENV={env_name}`, or pass --region with the region it is deployed in"
            ) from None
        raise CliError(f"cannot read stack {name}: {describe_aws_error(error)}") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    if BUCKET_OUTPUT_KEY not in outputs:
        raise CliError(f"stack {name} has no {BUCKET_OUTPUT_KEY} output; is it deployed?")
    return str(outputs[BUCKET_OUTPUT_KEY])


def aws_sources(s3: Any, bucket: str) -> Sources:
    return Sources(
        S3GroupFiles(s3, bucket, BUCKET_ROOT + ANOMALIES), S3FeedbackStore(s3, bucket, BUCKET_ROOT + FEEDBACK)
    )


def feedback_command(
    *, group_id: str, verdict: Verdict, note: str | None, sources: Sources, clock: Clock, print_line: PrintLine
) -> int:
    """Record a label built from the group's record at its peak (its highest severity; the latest on ties)."""
    try:
        check_group_id(group_id)
    except FeedbackError as error:
        raise CliError(str(error)) from None
    now = clock()
    records = records_of_group(sources.groups, group_id, now=now)
    if not records:
        raise CliError(
            f"no anomaly group {group_id} in {sources.groups.location}; "
            "`python -m streaming_cli groups` lists the recent ones"
        )
    peak = max(enumerate(records), key=lambda pair: (float(pair[1]["severity"]), pair[0]))[1]
    label = FeedbackLabel.from_group(peak, verdict=verdict, recorded_at=_iso(now), note=note)
    location = sources.labels.write_label(label)
    print_line(
        f"{group_id}: recorded {verdict} ({label.measure} {label.direction} at the {label.level} level, "
        f"{len(label.series)} series) in {location}"
    )
    if verdict == "not_anomaly":
        print_line("Later groups of the same pattern stop alerting unless they deviate more than 50% further.")
    return EXIT_OK


def groups_command(*, since_hours: float, sources: Sources, clock: Clock, print_line: PrintLine) -> int:
    """One line per group seen in the last hours: its latest state, where, whether it alerted, its label."""
    now = clock()
    records = records_since(sources.groups, now - timedelta(hours=since_hours), now=now)
    labels = latest_by_group(sources.labels.read_labels())
    latest: dict[str, dict[str, Any]] = {}
    peak: dict[str, float] = {}
    for record in records:
        group_id = str(record["group_id"])
        latest[group_id] = record
        peak[group_id] = max(peak.get(group_id, 0.0), float(record["severity"]))
    if not latest:
        print_line(f"no anomaly groups in the last {since_hours:g} hours in {sources.groups.location}")
        return EXIT_OK
    print_line(f"{'GROUP':<40} {'LAST INTERVAL':<17} {'SEV':>3} {'ALERTED':<7} {'FEEDBACK':<11} WHERE")
    for group_id, record in sorted(latest.items(), key=lambda item: item[1]["interval_start"], reverse=True):
        label = labels.get(group_id)
        feedback = label.verdict if label else (record.get("feedback") or "-")
        print_line(
            f"{group_id:<40} {str(record['interval_start'])[:16]:<17} {peak[group_id]:>3.0f} "
            f"{'yes' if record.get('alerted') else 'no':<7} {feedback:<11} "
            f"{record['measure']} {record['direction']} in {where(record)}"
        )
    return EXIT_OK


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 24 * 90:
        raise argparse.ArgumentTypeError(f"must be a number of hours in (0, 2160], got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streaming_cli", description="Label the streaming detector's anomaly groups and list them."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def where_to(command: argparse.ArgumentParser) -> None:
        target = command.add_mutually_exclusive_group(required=True)
        target.add_argument("--out", type=Path, help="the local mode's out folder (e.g. out)")
        target.add_argument("--env", help="a deployed environment in cdk.json (e.g. dev)")
        command.add_argument("--region", help="AWS region (default: the environment's region in cdk.json)")

    feedback = commands.add_parser("feedback", help="label one anomaly group")
    feedback.add_argument("group_id", help="e.g. revenue-low-20261202T1405Z (from the alert or `groups`)")
    verdict = feedback.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--not-anomaly", dest="verdict", action="store_const", const="not_anomaly")
    verdict.add_argument("--anomaly", dest="verdict", action="store_const", const="anomaly")
    feedback.add_argument("--note", help="why (kept with the label)")
    where_to(feedback)

    groups = commands.add_parser("groups", help="list recent anomaly groups with their feedback")
    groups.add_argument(
        "--since", type=_hours, default=DEFAULT_SINCE_HOURS, metavar="HOURS", help="default 24 hours back"
    )
    where_to(groups)
    return parser


def main(argv: Sequence[str] | None = None, *, clock: Clock = lambda: datetime.now(UTC)) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    arguments = _parser().parse_args(argv)
    region: str | None = None

    def print_line(text: str) -> None:
        print(text, flush=True)

    try:
        if arguments.out is not None:
            if arguments.region:
                raise CliError("--region is only used with --env")
            sources = local_sources(arguments.out)
        else:
            import boto3

            region = environment_region(arguments.env, arguments.region, cdk_environments())
            session = boto3.Session(region_name=region)
            region = session.region_name
            bucket = resolve_data_bucket(session.client("cloudformation"), arguments.env)
            sources = aws_sources(session.client("s3"), bucket)
        if arguments.command == "feedback":
            return feedback_command(
                group_id=arguments.group_id,
                verdict=arguments.verdict,
                note=arguments.note,
                sources=sources,
                clock=clock,
                print_line=print_line,
            )
        return groups_command(since_hours=arguments.since, sources=sources, clock=clock, print_line=print_line)
    except (CliError, GroupRecordError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except (ClientError, BotoCoreError) as error:
        print(f"error: {describe_aws_error(error, region)}", file=sys.stderr)
        return EXIT_ERROR
