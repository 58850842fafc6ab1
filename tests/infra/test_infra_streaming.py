"""Streaming stack: catalog, Glue streaming job (run while deployed), generator, detector and alerts."""

from __future__ import annotations

from aws_cdk.assertions import Match
from infra_synth import Synthesized, role_actions, role_grants

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_catalog_table_reads_the_stream_as_raw_records(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    template.has_resource_properties(
        "AWS::Glue::Table",
        {
            "TableInput": Match.object_like(
                {
                    "Parameters": {
                        "classification": "csv",
                        "typeOfData": "kinesis",
                        "streamARN": Match.any_value(),
                        "delimiter": "\u0001",
                    },
                    "StorageDescriptor": Match.object_like(
                        {"Columns": [{"Name": "raw", "Type": "string"}], "Location": Match.any_value()}
                    ),
                }
            )
        },
    )
    template.resource_count_is("AWS::Glue::Database", 1)


def test_streaming_job_is_glue_5_streaming_with_interval_settings(dev: Synthesized) -> None:
    streaming = dev.config.streaming
    dev.template(dev.stacks.streaming).has_resource_properties(
        "AWS::Glue::Job",
        {
            "Command": Match.object_like({"Name": "gluestreaming"}),
            "GlueVersion": "5.0",
            "WorkerType": streaming.glue_worker_type,
            "NumberOfWorkers": streaming.glue_number_of_workers,
            "SecurityConfiguration": Match.any_value(),
            "DefaultArguments": Match.object_like(
                {
                    "--window_size_seconds": str(streaming.window_size_seconds),
                    "--frequency_minutes": str(streaming.frequency_minutes),
                    "--dimension_column": "marketplace",
                    "--timestamp_column": "event_time",
                    "--measure_column": "views",
                    "--checkpoint_uri": Match.any_value(),
                    "--quarantine_uri": Match.any_value(),
                    "--output_uri": Match.any_value(),
                }
            ),
        },
    )


def test_streaming_job_runs_while_deployed_and_stops_on_destroy(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    job_id = next(iter(template.find_resources("AWS::Glue::Job")))
    template.has_resource_properties("Custom::GlueStreamingJobRun", {"JobName": {"Ref": job_id}})
    template.has_resource_properties("AWS::Lambda::Function", {"Handler": "streaming_job_control.handler.on_event"})
    assert role_actions(template, "EtlJobJobControlRole") == {
        "glue:StartJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
        *XRAY,
        *LOGS,
    }


def test_streaming_job_role_reads_the_stream_and_writes_its_prefixes(dev: Synthesized) -> None:
    grants = role_grants(dev.template(dev.stacks.streaming), "EtlJobRole")
    writes = {resource for action, resource in grants if action == "s3:PutObject"}
    assert len(writes) == 3
    for prefix in ("/metrics/intervals/*", "/metrics/quarantine/*", "/metrics/checkpoints/*"):
        assert any(prefix in resource for resource in writes), prefix
    assert {a for a, r in grants if a.startswith("kinesis:")} >= {"kinesis:GetRecords", "kinesis:GetShardIterator"}
    assert not any(a in {"kinesis:PutRecord", "kinesis:PutRecords"} for a, _ in grants)


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
            "Environment": {"Variables": Match.object_like({"STREAM_NAME": Match.any_value()})},
        },
    )
    assert role_actions(template, "GeneratorRole") == {"kinesis:PutRecords", "kms:GenerateDataKey", *XRAY, *LOGS}


def test_detector_runs_each_interval_after_an_offset(dev: Synthesized) -> None:
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
                        "DIMENSION_COLUMN": "marketplace",
                        "TOPIC_ARN": Match.any_value(),
                    }
                )
            },
        },
    )


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
    }
