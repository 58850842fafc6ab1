"""Streaming stack: the Glue streaming job (documented Kinesis source, restart on change, bounded retries,
maintenance window), its supervisor and alarms, the generator, the detector, and an existing stream as a setting."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from infra_synth import Synthesized, environment, logical_id, role_actions, role_grants, role_statements
from test_infra_gates import _lint, nag_findings

from cdk_constructs.streaming_etl_job import SCRIPT, run_config_hash

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
EXISTING_STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/clickstream"
EXISTING_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@cache
def existing_stream_variant() -> Synthesized:
    """dev, reading an existing stream (with its customer-managed key) in active hours instead of the generator."""
    config = environment("dev")
    streaming = replace(
        config.streaming,
        source_stream_arn=EXISTING_STREAM_ARN,
        source_stream_kms_key_arn=EXISTING_KEY_ARN,
        generator_enabled=False,
        job_run_mode="active_hours",
        job_active_hours_utc=(7, 19),
    )
    outdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cdk-test-{os.getpid()}-dev-existing-stream"
    return Synthesized(replace(config, streaming=streaming), outdir)


def job(template: Template) -> dict[str, Any]:
    (resource,) = template.find_resources("AWS::Glue::Job").values()
    return resource["Properties"]


def running_job(template: Template) -> dict[str, Any]:
    (resource,) = template.find_resources("Custom::GlueStreamingJobRun").values()
    return resource


def test_the_job_reads_kinesis_through_documented_job_arguments_not_a_catalog_table(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    arguments = job(template)["DefaultArguments"]
    # Then the stream ARN and starting position reach the script's from_options source as job arguments
    assert "ExportsOutputFnGetAttMetricsStream" in json.dumps(arguments["--source_stream_arn"])
    assert arguments["--starting_position"] == dev.config.streaming.source_starting_position
    # And no Data Catalog table describes the stream any more (nothing reads it)
    template.resource_count_is("AWS::Glue::Table", 0)
    assert not {"--database_name", "--table_name"} & set(arguments)


def test_streaming_job_is_glue_5_streaming_with_capacity_retries_and_maintenance_from_config(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synth in (dev, prod):
        streaming = synth.config.streaming
        synth.template(synth.stacks.streaming).has_resource_properties(
            "AWS::Glue::Job",
            {
                "Command": Match.object_like({"Name": "gluestreaming"}),
                "GlueVersion": "5.0",
                "WorkerType": streaming.glue_worker_type,
                "NumberOfWorkers": streaming.glue_number_of_workers,
                "MaxRetries": streaming.job_max_retries,
                "MaintenanceWindow": streaming.maintenance_window,
                # A blank timeout would end a Glue 5.0 run after 480 minutes.
                "Timeout": 10080,
                "ExecutionProperty": {"MaxConcurrentRuns": 1},
                "SecurityConfiguration": Match.any_value(),
                "DefaultArguments": Match.object_like(
                    {
                        "--window_size_seconds": str(streaming.window_size_seconds),
                        "--frequency_minutes": str(streaming.frequency_minutes),
                        "--batch_max_retries": str(streaming.batch_max_retries),
                        "--timestamp_column": "event_time",
                        "--checkpoint_uri": Match.any_value(),
                        "--quarantine_uri": Match.any_value(),
                        "--output_uri": Match.any_value(),
                    }
                ),
            },
        )
    assert job(dev.template(dev.stacks.streaming))["WorkerType"] == "G.025X"


def test_the_job_keeps_the_metric_sets_dimensions_and_measures_in_both_environments(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synth in (dev, prod):
        streaming = synth.config.streaming
        arguments = job(synth.template(synth.stacks.streaming))["DefaultArguments"]
        # Then the job gets the configured names, comma-separated in config order (the defaults: the reference schema)
        assert arguments["--dimensions"] == ",".join(streaming.dimensions) == "platform,marketplace"
        assert arguments["--measures"] == ",".join(m.name for m in streaming.measures) == "views,revenue"
        # And the single-column arguments of the old job are gone
        assert not {"--dimension_column", "--measure_column"} & set(arguments)


def test_the_restart_hash_covers_the_metric_set_arguments(dev: Synthesized) -> None:
    # Given the deployed job's static settings, as the construct hashes them
    template = dev.template(dev.stacks.streaming)
    properties = job(template)
    static = {name: value for name, value in properties["DefaultArguments"].items() if isinstance(value, str)}
    settings = {
        "glue_version": properties["GlueVersion"],
        "worker_type": properties["WorkerType"],
        "number_of_workers": properties["NumberOfWorkers"],
        "max_retries": properties["MaxRetries"],
        "timeout": properties["Timeout"],
        "arguments": static,
    }
    deployed_hash = running_job(template)["Properties"]["RunConfigHash"]
    # Then the run resource's hash is that of these settings
    assert run_config_hash(SCRIPT, settings) == deployed_hash
    # And another metric set (a dimension or a measure more, or another order) gives another hash: a restart
    for name, value in (
        ("--dimensions", "platform,marketplace,device"),
        ("--dimensions", "marketplace,platform"),
        ("--measures", "views,revenue,orders"),
    ):
        changed = {**settings, "arguments": {**static, name: value}}
        assert run_config_hash(SCRIPT, changed) != deployed_hash, (name, value)


def test_glue_jobs_use_glue_5_logging_arguments_not_the_deprecated_ones(dev: Synthesized) -> None:
    deprecated = {"--enable-continuous-cloudwatch-log", "--enable-continuous-log-filter"}
    for stack in (dev.stacks.streaming, dev.stacks.data_prep):
        arguments = job(dev.template(stack))["DefaultArguments"]
        assert not deprecated & set(arguments), stack.stack_name
        assert arguments["--enable-metrics"] == "true"
    # The streaming job's log groups exist with a retention, encrypted, under its custom prefix
    template = dev.template(dev.stacks.streaming)
    prefix = job(template)["DefaultArguments"]["--custom-logGroup-prefix"]
    assert prefix == "/aws-glue/taxi-anomaly-dev-streaming-etl"
    for suffix in ("error", "output"):
        template.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": f"{prefix}/{suffix}", "RetentionInDays": 14, "KmsKeyId": Match.any_value()},
        )


def test_the_run_resource_carries_what_the_job_runs_and_waits_for_the_roles_policy(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    resource = running_job(template)
    properties = resource["Properties"]
    job_id = logical_id(template, "AWS::Glue::Job", "EtlJob")
    # Then a hash of the script and settings, the deploy-time values and the run policy are its properties
    assert properties["JobName"] == {"Ref": job_id}
    assert re.fullmatch(r"[0-9a-f]{64}", properties["RunConfigHash"])
    assert set(properties["Watched"]) == {"--source_stream_arn", "--output_uri", "--quarantine_uri", "--checkpoint_uri"}
    generator_rule = logical_id(template, "AWS::Events::Rule", "GeneratorSchedule")
    assert properties["RunPolicy"] == {
        "Mode": "with_generator",
        "GeneratorRuleName": {"Ref": generator_rule},
        "ActiveHoursUtc": "",
    }
    # And the first run starts only after the job's role and its policy exist
    role_policy = logical_id(template, "AWS::IAM::Policy", "EtlJobRoleDefaultPolicy")
    assert {job_id, role_policy, logical_id(template, "AWS::IAM::Role", "EtlJobRole")} <= set(resource["DependsOn"])


def test_the_hash_changes_with_the_script_the_arguments_and_the_frequency(
    dev: Synthesized, prod: Synthesized, tmp_path: Path
) -> None:
    # Given dev (5-minute intervals) and prod (10-minute)
    dev_hash = running_job(dev.template(dev.stacks.streaming))["Properties"]["RunConfigHash"]
    prod_hash = running_job(prod.template(prod.stacks.streaming))["Properties"]["RunConfigHash"]
    assert dev_hash != prod_hash
    # And for the same settings, an edited script gives another hash
    edited = tmp_path / "streaming_etl.py"
    edited.write_bytes(SCRIPT.read_bytes() + b"\n# edited\n")
    settings = {"arguments": {"--frequency_minutes": "5"}}
    assert run_config_hash(SCRIPT, settings) != run_config_hash(edited, settings)
    assert run_config_hash(SCRIPT, settings) != run_config_hash(SCRIPT, {"arguments": {"--frequency_minutes": "10"}})


def test_job_control_can_start_stop_and_read_the_generator_state_only(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    template.has_resource_properties("AWS::Lambda::Function", {"Handler": "streaming_job_control.handler.on_event"})
    assert role_actions(template, "EtlJobJobControlRole") == {
        "glue:StartJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
        "events:DescribeRule",
        *XRAY,
        *LOGS,
    }


def test_the_supervisor_runs_on_a_schedule_and_on_the_jobs_state_changes(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    supervisor = logical_id(template, "AWS::Lambda::Function", "SupervisorFunction")
    cr_id = logical_id(template, "Custom::GlueStreamingJobRun", "EtlJobRunningJob")
    job_id = logical_id(template, "AWS::Glue::Job", "EtlJob")
    target = Match.array_with(
        [Match.object_like({"Arn": {"Fn::GetAtt": [supervisor, "Arn"]}, "DeadLetterConfig": Match.any_value()})]
    )
    template.has_resource(
        "AWS::Events::Rule",
        {
            "Properties": Match.object_like({"ScheduleExpression": "rate(5 minutes)", "Targets": target}),
            "DependsOn": Match.array_with([cr_id]),
        },
    )
    template.has_resource(
        "AWS::Events::Rule",
        {
            "Properties": Match.object_like(
                {
                    "EventPattern": {
                        "source": ["aws.glue"],
                        "detail-type": ["Glue Job State Change"],
                        "detail": {
                            "jobName": [{"Ref": job_id}],
                            "state": Match.array_with(["SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT"]),
                        },
                    },
                    "Targets": target,
                }
            ),
            # Deleted before the run resource stops the job on destroy, so the supervisor cannot restart it
            "DependsOn": Match.array_with([cr_id]),
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "streaming_job_control.supervisor_handler.lambda_handler",
            "ReservedConcurrentExecutions": 1,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "JOB_NAME": {"Ref": job_id},
                        "RUN_MODE": "with_generator",
                        "GLUE_MAX_RETRIES": str(dev.config.streaming.job_max_retries),
                        "FAILURE_LIMIT": str(dev.config.streaming.job_failure_limit),
                        "FAILURE_WINDOW_HOURS": str(dev.config.streaming.job_failure_window_hours),
                    }
                )
            },
        },
    )
    assert role_actions(template, "SupervisorRole") == {
        "glue:GetJobRuns",
        "glue:StartJobRun",
        "glue:BatchStopJobRun",
        "events:DescribeRule",
        "cloudwatch:PutMetricData",
        # the on-failure destination of its asynchronous invocations
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        *XRAY,
        *LOGS,
    }
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": supervisor},
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
            "MaximumRetryAttempts": 2,
        },
    )
    (metric_statement,) = [
        s for s in role_statements(template, "SupervisorRole") if s["Action"] == "cloudwatch:PutMetricData"
    ]
    assert metric_statement["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "TaxiAnomaly/StreamingSupervisor"}
    }


def test_streaming_job_role_reads_the_stream_and_writes_its_prefixes_as_hadoop_probes_them(dev: Synthesized) -> None:
    grants = role_grants(dev.template(dev.stacks.streaming), "EtlJobRole")
    writes = {resource for action, resource in grants if action == "s3:PutObject"}
    for prefix in ("metrics/intervals", "metrics/quarantine", "metrics/checkpoints"):
        # the bare path (a "file"), and everything under it (which includes the "prefix/" directory marker)
        assert any(resource.endswith(f'/{prefix}"]]}}') for resource in writes), prefix
        assert any(resource.endswith(f'/{prefix}/*"]]}}') for resource in writes), prefix
    assert len(writes) == 6
    assert {a for a, _ in grants if a.startswith("kinesis:")} >= {
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:DescribeStreamSummary",
    }
    assert not any(a in {"kinesis:PutRecord", "kinesis:PutRecords"} or a.startswith("glue:") for a, _ in grants)


def test_both_glue_roles_may_publish_metrics_to_the_glue_namespace_only(dev: Synthesized) -> None:
    for stack, role in ((dev.stacks.streaming, "EtlJobRole"), (dev.stacks.data_prep, "PrepJobRole")):
        statements = [
            s
            for s in role_statements(dev.template(stack), role)
            if "cloudwatch:PutMetricData" in json.dumps(s["Action"])
        ]
        assert [s["Condition"] for s in statements] == [{"StringEquals": {"cloudwatch:namespace": "Glue"}}], role


def test_generator_runs_on_a_schedule_that_prod_keeps_disabled(dev: Synthesized, prod: Synthesized) -> None:
    for synth, state in ((dev, "ENABLED"), (prod, "DISABLED")):
        synth.template(synth.stacks.streaming).has_resource_properties(
            "AWS::Events::Rule",
            {"ScheduleExpression": f"rate({synth.config.streaming.generator_rate_minutes} minute)", "State": state},
        )
    template = dev.template(dev.stacks.streaming)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "metrics_generator.handler.lambda_handler",
            "ReservedConcurrentExecutions": 1,
            "Environment": {"Variables": Match.object_like({"STREAM_NAME": Match.any_value()})},
        },
    )
    assert "kinesis:PutRecords" in role_actions(template, "GeneratorRole")


def generator_environment(template: Template) -> dict[str, Any]:
    (function,) = [
        resource
        for resource in template.find_resources("AWS::Lambda::Function").values()
        if resource["Properties"].get("Handler") == "metrics_generator.handler.lambda_handler"
    ]
    return function["Properties"]["Environment"]["Variables"]


def test_the_generator_gets_the_anomaly_target_in_both_environments(dev: Synthesized, prod: Synthesized) -> None:
    # Given both environments (no target configured)
    for synth in (dev, prod):
        variables = generator_environment(synth.template(synth.stacks.streaming))
        # Then the generator injects nothing, and the old single-marketplace variables are gone
        assert variables["ANOMALY_TARGET"] == ""
        assert not {"ANOMALY_MARKETPLACE", "ANOMALY_FACTOR"} & set(variables)


def test_a_configured_anomaly_target_reaches_the_generator_as_json() -> None:
    # Given dev with a revenue drop in web/de, synthesized as the generator construct alone (no app synth)
    import aws_cdk as cdk
    from aws_cdk import aws_kinesis as kinesis
    from aws_cdk import aws_sqs as sqs

    from app_config import AnomalyTarget
    from cdk_constructs.metrics_generator import MetricsGenerator

    config = environment("dev")
    target = AnomalyTarget("revenue", (("platform", "web"), ("marketplace", "de")), 0.2)
    config = replace(config, streaming=replace(config.streaming, anomaly_target=target))
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "GeneratorOnly", env=cdk.Environment(account="123456789012", region=config.region))
    MetricsGenerator(
        stack,
        "Generator",
        config=config,
        stream=kinesis.Stream(stack, "Stream"),
        dead_letter_queue=sqs.Queue(stack, "Dlq"),
    )

    # Then the Lambda's environment carries the target as the JSON the generator parses
    variables = generator_environment(Template.from_stack(stack))
    assert json.loads(variables["ANOMALY_TARGET"]) == {
        "measure": "revenue",
        "dimensions": {"platform": "web", "marketplace": "de"},
        "factor": 0.2,
    }


def test_detector_runs_once_per_interval_with_its_settings(dev: Synthesized) -> None:
    streaming = dev.config.streaming
    template = dev.template(dev.stacks.streaming)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"ScheduleExpression": f"cron({streaming.detector_offset_minutes}/{streaming.frequency_minutes} * * * ? *)"},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "anomaly_detector.handler.lambda_handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "FREQUENCY_MINUTES": str(streaming.frequency_minutes),
                        "ANOMALY_THRESHOLD": str(streaming.anomaly_threshold),
                        "HISTORY_LENGTH": str(streaming.history_length),
                        "DIMENSIONS": "platform,marketplace",
                        "MEASURES": "views:sum,revenue:sum",
                        "ALERT_MIN_SEVERITY": "70.0",
                        "TOPIC_ARN": Match.any_value(),
                    }
                )
            },
        },
    )


def test_detector_env_has_no_single_column_settings(dev: Synthesized) -> None:
    [detector] = [
        r
        for r in dev.template(dev.stacks.streaming).find_resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "anomaly_detector.handler.lambda_handler"
    ]
    variables = detector["Properties"]["Environment"]["Variables"]
    assert not {"DIMENSION_COLUMN", "MEASURE_COLUMN"} & set(variables)


def test_detector_role_reads_intervals_writes_anomalies_and_alerts(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    grants = role_grants(template, "DetectorRole")
    reads = {r for a, r in grants if a == "s3:GetObject"}
    writes = {r for a, r in grants if a == "s3:PutObject"}
    assert any("/metrics/intervals/*" in r for r in reads)
    assert not any("/metrics/intervals/*" in r for r in writes)
    assert {"/metrics/anomalies/*", "/metrics/detector-state/*"} == {
        p for p in ("/metrics/anomalies/*", "/metrics/detector-state/*") if any(p in r for r in writes)
    }
    assert "sns:Publish" in role_actions(template, "DetectorRole")
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})


def test_streaming_alarms_say_what_broke(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    names = {a["Properties"]["AlarmName"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    assert names == {
        "taxi-anomaly-dev-metrics-generator-errors",
        "taxi-anomaly-dev-anomaly-detector-errors",
        "taxi-anomaly-dev-streaming-event-target-dead-letters",
        "taxi-anomaly-dev-streaming-job-failed",
        "taxi-anomaly-dev-streaming-job-not-running",
        "taxi-anomaly-dev-streaming-job-run-ended",
        "taxi-anomaly-dev-streaming-job-supervisor-gave-up",
        "taxi-anomaly-dev-streaming-job-supervisor-errors",
        "taxi-anomaly-dev-streaming-supervisor-event-failed",
        "taxi-anomaly-dev-streaming-empty-intervals",
    }


def test_empty_intervals_alarm_only_while_the_job_should_run(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "taxi-anomaly-dev-streaming-empty-intervals",
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
            "AlarmActions": Match.any_value(),
            "Metrics": Match.array_with(
                [
                    Match.object_like({"Expression": "IF(empty > 0 AND desired > 0, 1, 0)"}),
                    Match.object_like(
                        {
                            "Id": "empty",
                            "MetricStat": Match.object_like(
                                {
                                    "Metric": {
                                        "MetricName": "EmptyInterval",
                                        "Namespace": "TaxiAnomaly/MetricsDetector",
                                    },
                                    "Period": 300,
                                }
                            ),
                        }
                    ),
                    Match.object_like(
                        {
                            "Id": "desired",
                            "MetricStat": Match.object_like(
                                {"Metric": Match.object_like({"MetricName": "JobDesired"}), "Period": 300}
                            ),
                        }
                    ),
                ]
            ),
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "taxi-anomaly-dev-streaming-job-not-running",
            "EvaluationPeriods": 3,
            "MetricName": "JobDown",
            "Namespace": "TaxiAnomaly/StreamingSupervisor",
        },
    )


@pytest.fixture(scope="module")
def existing() -> Synthesized:
    return existing_stream_variant()


def test_an_existing_stream_replaces_the_created_one_and_the_generator(existing: Synthesized) -> None:
    storage = existing.template(existing.stacks.storage)
    streaming = existing.template(existing.stacks.streaming)
    # Then no stream is created, no generator is deployed, and the job reads the configured ARN
    storage.resource_count_is("AWS::Kinesis::Stream", 0)
    assert not any(
        "metrics_generator" in str(f["Properties"].get("Handler"))
        for f in streaming.find_resources("AWS::Lambda::Function").values()
    )
    arguments = job(streaming)["DefaultArguments"]
    assert arguments["--source_stream_arn"] == EXISTING_STREAM_ARN
    # with a checkpoint of its own: positions in another stream's shards would not be its own
    assert json.dumps(arguments["--checkpoint_uri"]).endswith('"/metrics/checkpoints/clickstream/"]]}')
    assert running_job(streaming)["Properties"]["RunPolicy"] == {
        "Mode": "active_hours",
        "GeneratorRuleName": "",
        "ActiveHoursUtc": "7-19",
    }
    # And the job's role may read that stream and decrypt with its key, and nothing else of Kinesis
    grants = role_grants(streaming, "EtlJobRole")
    assert {r for a, r in grants if a.startswith("kinesis:")} == {json.dumps(EXISTING_STREAM_ARN)}
    assert ("kms:Decrypt", json.dumps(EXISTING_KEY_ARN)) in grants
    assert "events:DescribeRule" not in role_actions(streaming, "SupervisorRole")


def test_the_existing_stream_variant_passes_cdk_nag_and_cfn_lint(existing: Synthesized) -> None:
    assert nag_findings(existing, "error") == []
    assert nag_findings(existing, "warning") == []
    outdir = Path(existing.assembly.directory)
    assert [error for template in sorted(outdir.glob("*.template.json")) for error in _lint(template)] == []
