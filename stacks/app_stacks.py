"""Builds every stack of one environment; shared by app.py and the tests."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from app_config import EnvironmentConfig
from cdk_constructs.provider_logs import give_provider_functions_log_groups
from stacks.approval_stack import ApprovalStack
from stacks.data_prep_stack import DataPrepStack
from stacks.operations_stack import OperationsStack
from stacks.pipeline_stack import PipelineStack
from stacks.storage_stack import StorageStack
from stacks.streaming_stack import StreamingStack


@dataclass(frozen=True)
class AppStacks:
    storage: StorageStack
    operations: OperationsStack
    data_prep: DataPrepStack
    pipeline: PipelineStack
    streaming: StreamingStack
    approval: ApprovalStack


def build_stacks(app: cdk.App, config: EnvironmentConfig) -> AppStacks:
    env = cdk.Environment(account=config.account, region=config.region)
    common = {"env": env, "termination_protection": config.termination_protection}
    storage = StorageStack(
        app,
        "Storage",
        stack_name=config.stack_name("storage"),
        config=config,
        description=f"Taxi anomaly ({config.name}): buckets and the metrics stream",
        **common,
    )
    operations = OperationsStack(
        app,
        "Operations",
        stack_name=config.stack_name("operations"),
        config=config,
        description=f"Taxi anomaly ({config.name}): operator notifications",
        **common,
    )
    data_prep = DataPrepStack(
        app,
        "DataPrep",
        stack_name=config.stack_name("data-prep"),
        config=config,
        raw_bucket=storage.buckets.raw,
        prepared_bucket=storage.buckets.prepared,
        operations_topic=operations.operations.topic,
        callback_table=storage.callback_table,
        description=f"Taxi anomaly ({config.name}): callback queue, handler, prep task and Glue job",
        **common,
    )
    approval = ApprovalStack(
        app,
        "Approval",
        stack_name=config.stack_name("approval"),
        config=config,
        table=storage.approval_table.table,
        artifacts_bucket=storage.buckets.artifacts,
        operations_topic=operations.operations.topic,
        description=f"Taxi anomaly ({config.name}): approval of pipeline runs (queue, mail, page, expiry)",
        **common,
    )
    pipeline = PipelineStack(
        app,
        "Pipeline",
        stack_name=config.stack_name("pipeline"),
        config=config,
        callback_queue=data_prep.callback_queue.queue,
        raw_bucket=storage.buckets.raw,
        prepared_bucket=storage.buckets.prepared,
        artifacts_bucket=storage.buckets.artifacts,
        approval_queue=approval.workflow.queue.queue,
        description=f"Taxi anomaly ({config.name}): SageMaker pipeline (callback prep, RCF, batch transform)",
        **common,
    )
    streaming = StreamingStack(
        app,
        "Streaming",
        stack_name=config.stack_name("streaming"),
        config=config,
        stream=storage.metrics_stream.stream if storage.metrics_stream is not None else None,
        metrics_bucket=storage.buckets.metrics,
        operations_topic=operations.operations.topic,
        description=f"Taxi anomaly ({config.name}): streaming metrics ETL and continuous anomaly detector",
        **common,
    )
    for stack in (storage, operations, data_prep, pipeline, streaming, approval):
        give_provider_functions_log_groups(
            stack, retention=config.log_retention_days, destroy_with_stack=config.destroy_data_with_stack
        )
        cdk.Tags.of(stack).add("project", "taxi-anomaly")
        cdk.Tags.of(stack).add("environment", config.name)
    return AppStacks(
        storage=storage,
        operations=operations,
        data_prep=data_prep,
        pipeline=pipeline,
        streaming=streaming,
        approval=approval,
    )
