"""End to end: the local mode runs the real pipeline definition and the streaming system on small data."""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from anomaly_detector.alerts import where

from local_mode.main import EXIT_FAILED, EXIT_OK, LocalModeArgs, RunResult, run
from local_mode.ml_system import EVENTS_HEADER, PREP_JOB_NAME, SCORED_WINDOWS_HEADER
from local_mode.report import false_events, injected_verdicts
from local_mode.streaming_sim import group_matches
from local_mode.taxi_data import WINDOW_MINUTES

pytestmark = pytest.mark.e2e

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PIPELINE_STEPS = ("PrepareData", "TrainModel", "CreateModel", "ScoreData", "Evaluate", "ApproveResults", "Register")
SCORING_STEPS = 4


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("local-mode")
    args = LocalModeArgs(
        out=out,
        trips=300_000,  # what `make local` generates
        poll_seconds=0.5,
        stream_hours=24,
        stream_batch_hours=12,
        stream_anomaly_hour=20,
        quiet=True,
    )
    return run(args)


def passengers_per_window_from_csv(csv_path: Path) -> dict[datetime, int]:
    """Independent of Spark: the sum of passenger_count per half hour, skipping rows without a count."""
    sums: dict[datetime, int] = defaultdict(int)
    window_seconds = WINDOW_MINUTES * 60
    with csv_path.open(encoding="utf-8") as lines:
        for row in csv.DictReader(lines):
            if not row["passenger_count"]:
                continue
            pickup = datetime.strptime(row["tpep_pickup_datetime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            window = int(pickup.timestamp()) // window_seconds * window_seconds
            sums[datetime.fromtimestamp(window, UTC)] += int(row["passenger_count"])
    return sums


def transform_accept(definition: dict[str, Any]) -> str:
    (score,) = [step for step in definition["Steps"] if step["Name"] == "ScoreData"]
    return str(score["Arguments"]["TransformOutput"].get("Accept", ""))


def test_every_window_is_scored_with_the_right_sum(full_run: RunResult) -> None:
    pipeline = full_run.pipeline
    assert pipeline is not None and pipeline.generated is not None and pipeline.scores_csv is not None
    expected = passengers_per_window_from_csv(pipeline.generated.path)
    with pipeline.scores_csv.open(encoding="utf-8") as lines:
        rows = list(csv.reader(lines))
    # The file keeps its first three columns and gains the decision and what was expected
    assert tuple(rows[0]) == SCORED_WINDOWS_HEADER
    assert rows[0][:3] == ["window_start", "passengers", "score"]
    scored = {datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC): int(row[1]) for row in rows[1:]}
    assert len(scored) == len(rows) - 1 == pipeline.generated.windows
    assert scored == {window: expected.get(window, 0) for window in scored}
    assert set(expected) <= set(scored)
    assert [step.name for step in pipeline.execution.steps] == list(PIPELINE_STEPS)
    assert [step.status for step in pipeline.execution.steps][:SCORING_STEPS] == ["Succeeded"] * SCORING_STEPS
    # And the decision columns agree with the events: flagged windows carry the id of their event
    assert {row[3] for row in rows[1:]} <= {"0", "1"}
    assert all(row[5] for row in rows[1:] if row[3] == "1")


def test_the_scored_run_is_evaluated_approved_over_http_and_registered(full_run: RunResult) -> None:
    pipeline = full_run.pipeline
    assert pipeline is not None
    # Scored in RCF's documented JSON Lines, which Evaluate reads with read_transform_output
    assert transform_accept(pipeline.definition) == "application/jsonlines"
    assert full_run.exit_code == EXIT_OK, full_run.summary
    assert [step.status for step in pipeline.execution.steps] == ["Succeeded"] * len(PIPELINE_STEPS)
    (mail,) = pipeline.approval_mails
    assert "Cut-off:" in mail["Message"] and "unavailable" not in mail["Message"]
    assert "observed" in mail["Message"] and "expected" in mail["Message"]
    (package,) = pipeline.model_packages
    assert package["ModelApprovalStatus"] == "Approved"


def test_every_injected_kind_is_found_with_no_false_event(full_run: RunResult) -> None:
    pipeline = full_run.pipeline
    assert pipeline is not None and pipeline.evaluation is not None
    verdicts = injected_verdicts(pipeline)
    assert {verdict.anomaly.kind for verdict in verdicts} == {"holiday", "storm", "disruption", "spike"}
    assert all(verdict.found for verdict in verdicts), full_run.summary
    assert false_events(pipeline) == [], full_run.summary
    # The events file lists them, and the summary says each kind was found
    assert pipeline.events_csv is not None
    with pipeline.events_csv.open(encoding="utf-8") as lines:
        events = list(csv.reader(lines))
    assert tuple(events[0]) == EVENTS_HEADER
    assert len(events) - 1 == len(pipeline.evaluation.events)
    assert full_run.summary.count("FOUND ") == 4
    assert "False events (overlapping no injected anomaly): 0" in full_run.summary


def test_streaming_anomaly_is_one_group_with_the_right_root_cause(full_run: RunResult) -> None:
    streaming = full_run.streaming
    assert streaming is not None and streaming.anomalies_folder is not None and streaming.injected
    # The group records the real detector wrote, read back from its files rather than from the in-memory outcome.
    files = sorted(streaming.anomalies_folder.glob("intvl_date=*/intvl_hhmm=*/groups.jsonl"))
    records = [json.loads(line) for path in files for line in path.read_text(encoding="utf-8").splitlines()]
    [injected] = streaming.injected
    hits = [record for record in records if group_matches(record, injected)]
    assert hits, records
    assert all(hit["direction"] == "high" and hit["observed"] > hit["expected"] for hit in hits)
    assert hits[0]["status"] == "new"
    # The spike is in every platform of de: the alert names de's roll-up, and only de combinations contribute.
    assert where(hits[0]) == "de (all platforms)"
    assert {contributor["dimensions"]["marketplace"] for contributor in hits[0]["contributors"]} == {"de"}
    assert streaming.injected_detected
    # Series without an injected change may open weak groups (92 series of two measures, counting noise), but
    # none of them reaches the alert threshold: the one alert is the injected spike's.
    others = [record for record in records if record["group_id"] != hits[0]["group_id"]]
    assert not any(record["alerted"] for record in others), [record["group_id"] for record in others]
    assert len(streaming.alerts) == 1
    assert "Injected anomalies found by a group with the right root cause: 1 of 1" in full_run.summary
    # The detector read every row the streaming ETL wrote, through the same partition layout as in S3.
    assert streaming.detector_rows_read == streaming.good
    assert streaming.quarantined >= 1
    assert streaming.intervals_folder is not None
    assert list(streaming.intervals_folder.glob("intvl_date=*/intvl_hhmm=*/batch_id=*/*.csv"))


def test_the_run_writes_the_report_page_from_its_out_folder(full_run: RunResult) -> None:
    # Then out/report.html has a drawn chart per configured measure the ETL wrote, and every pipeline event
    page = full_run.report_page
    assert page is not None and page == full_run.out / "report.html"
    html = page.read_text(encoding="utf-8")
    section = html.split('data-measure="views"', 1)[1].split("</section>", 1)[0]
    assert "<polyline" in section
    events = full_run.pipeline.evaluation.events if full_run.pipeline and full_run.pipeline.evaluation else ()
    assert html.count('<tr class="event">') == len(events) > 0


def test_charts_are_png_files(full_run: RunResult) -> None:
    assert {path.name for path in full_run.charts} == {"pipeline_scores.png", "streaming_marketplaces.png"}
    for chart in full_run.charts:
        content = chart.read_bytes()
        assert len(content) > 10_000
        assert content.startswith(PNG_SIGNATURE)


def test_glue_failure_fails_the_callback_step_with_its_reason(tmp_path: Path) -> None:
    result = run(LocalModeArgs(out=tmp_path, fail_prep=True, only="pipeline", poll_seconds=0.5, quiet=True))

    assert result.exit_code == EXIT_FAILED
    assert result.pipeline is not None
    failed = result.pipeline.execution.failed_step
    assert failed is not None
    assert (failed.name, failed.step_type, failed.status) == ("PrepareData", "Callback", "Failed")
    assert failed.failure_reason.startswith("Glue job run jr_")
    assert "FAILED: PrepInputError: no trip data files under s3://taxi-raw-local/taxi/" in failed.failure_reason
    assert [step.status for step in result.pipeline.execution.steps] == ["Failed"] + ["NotStarted"] * 6
    recorded = json.loads((tmp_path / "pipeline" / "execution.json").read_text(encoding="utf-8"))
    assert recorded["PipelineExecutionStatus"] == "Failed"
    assert recorded["PipelineExecutionSteps"][0]["FailureReason"] == failed.failure_reason
    assert "FailureReason (PrepareData): Glue job run jr_" in result.summary


def test_a_killed_task_fails_the_callback_step_through_the_watchdog(tmp_path: Path) -> None:
    # Given a prep task that is killed (SIGKILL, as on out-of-memory) while its Glue run is going
    # (the run is still starting when the kill comes, however fast the warm local Spark would be)
    started = time.monotonic()
    result = run(
        LocalModeArgs(
            out=tmp_path,
            trips=20_000,
            only="pipeline",
            poll_seconds=0.5,
            kill_task_after=2.0,
            glue_startup_seconds=6.0,
            quiet=True,
            charts=False,
        )
    )
    # Then the task watchdog answers for it: the callback step fails with the stop reason, within seconds
    assert result.exit_code == EXIT_FAILED
    assert result.pipeline is not None
    failed = result.pipeline.execution.failed_step
    assert failed is not None
    assert (failed.name, failed.status) == ("PrepareData", "Failed")
    assert failed.failure_reason.startswith("Prep task stopped before reporting: Container killed by SIGKILL")
    assert "exit 137" in failed.failure_reason
    assert failed.seconds < 30
    assert time.monotonic() - started < 90
    # ...and the Glue run it had started does not outlive it: the watchdog stopped it, and it wrote
    # nothing (issue 11, item 5)
    assert any("Started Glue job run" in line for line in result.progress_lines)
    assert "was asked to stop" in failed.failure_reason
    assert any(line.endswith("STOPPED") and "[glue] job run" in line for line in result.progress_lines)
    prepared = tmp_path / "s3" / "taxi-prepared-local"
    assert not any(path.is_file() for path in prepared.rglob("*")), "the stopped run wrote output"


def test_a_rejected_run_fails_at_approve_results_and_registers_nothing(tmp_path: Path) -> None:
    # Given a run whose approver presses Reject on the mailed page (--approval reject, over HTTP)
    result = run(
        LocalModeArgs(out=tmp_path, trips=20_000, only="pipeline", approval="reject", quiet=True, charts=False)
    )
    # Then the step fails with the approver's reason, Register never starts and no model package exists
    assert result.exit_code == EXIT_FAILED
    assert result.pipeline is not None
    statuses = {step.name: step.status for step in result.pipeline.execution.steps}
    assert [statuses[name] for name in PIPELINE_STEPS] == ["Succeeded"] * 5 + ["Failed", "NotStarted"]
    failed = result.pipeline.execution.failed_step
    assert failed is not None and failed.name == "ApproveResults"
    assert failed.failure_reason.startswith("Rejected by ")
    assert len(result.pipeline.approval_mails) == 1
    assert result.pipeline.model_packages == []
    assert not (tmp_path / "pipeline" / "model-registry").exists()
    # ...while the scores it was judged on are still there to look at
    assert result.pipeline.scores_csv is not None and result.pipeline.scores_csv.is_file()


def test_events_completion_answers_through_glue_completion(tmp_path: Path) -> None:
    result = run(
        LocalModeArgs(out=tmp_path, completion="events", trips=20_000, only="pipeline", quiet=True, charts=False)
    )

    assert result.pipeline is not None
    # PrepareData succeeds through the Glue completion path (the steps after it are tested with the full run).
    assert result.pipeline.execution.steps[0].status == "Succeeded", result.summary
    calls = result.pipeline.emulator_calls
    # The handler looks for duplicates and starts the run; glue-completion reads the run and answers.
    assert calls.count("AWSGlue.StartJobRun") == 1
    assert "AWSGlue.GetJobRuns" in calls
    assert "SageMaker.SendPipelineExecutionStepSuccess" in calls
    assert not any("fargate" in line for line in result.progress_lines)
    assert any(f"Glue Job State Change: {PREP_JOB_NAME}" in line for line in result.progress_lines)
    assert any("glue-completion: success reported" in line for line in result.progress_lines)


def test_a_lost_completion_event_is_ended_by_the_reconciler(tmp_path: Path) -> None:
    # Given events mode, where the Glue run's completion event is lost (--drop-events)
    result = run(LocalModeArgs(out=tmp_path, drop_events=True, trips=20_000, only="pipeline", quiet=True, charts=False))

    # Then the reconciler finds the SUCCEEDED run and ends the step with its outputs; the pipeline goes on
    assert result.exit_code == EXIT_OK, result.summary
    assert any("--drop-events: the event is lost" in line for line in result.progress_lines)
    assert not any("glue-completion:" in line for line in result.progress_lines)
    assert any("[reconciler]" in line and "SUCCEEDED without a callback" in line for line in result.progress_lines)
