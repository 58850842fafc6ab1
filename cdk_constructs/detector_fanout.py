"""The detector's partitioned fan-out (``streaming.detector_partitions`` > 1): a Step Functions Standard state machine,
started by the detector's schedule, that resolves the closed interval, scores every hash partition in a Map, and
forms the interval's groups in a final step (``lambda/anomaly_detector/fanout.py``; README "Scale").
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from cdk_constructs.nag import acknowledge, matching

# "Handle Lambda service exceptions" (Step Functions Developer Guide): "invoking Lambda results in a 500 error, such
# as ClientExecutionTimeoutException, ServiceException, AWSLambdaException, or SdkClientException. As a best
# practice, proactively handle these exceptions in your state machine to Retry"; "When Lambda hits the maximum
# number of invocations, the error is Lambda.TooManyRequestsException" (the group former's reserved concurrency of 1
# makes that the normal wait for an execution that overlaps another). Function errors (Lambda.Unknown, our own
# exceptions) are not retried here: they fail the execution, which is alarmed on, and the next run catches up.
SERVICE_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


class DetectorFanout(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        partitions: int,
        partition_scorer: lambda_.IFunction,
        group_former: lambda_.IFunction,
        timeout: Duration,
        log_retention: logs.RetentionDays,
        destroy_logs_with_stack: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        resolve = tasks.LambdaInvoke(
            self,
            "ResolveInterval",
            comment="The interval the schedule's event closes (or the hand-given interval_start), and the partitions",
            lambda_function=group_former,
            payload=sfn.TaskInput.from_json_path_at("$"),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path="$.run",
        )
        score = tasks.LambdaInvoke(
            self,
            "ScorePartition",
            lambda_function=partition_scorer,
            payload=sfn.TaskInput.from_json_path_at("$"),
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        # Map state (Amazon States Language): "MaxConcurrency ... provides an upper bound on how many invocations of
        # the Iterator may run in parallel"; inline mode "supports up to 40 concurrent iterations", which is why
        # MaxConcurrency is min(P, 40) with P up to 64.
        map_partitions = sfn.Map(
            self,
            "ScorePartitions",
            comment="One partition run per hash partition",
            items_path="$.run.partition_list",
            max_concurrency=min(partitions, 40),
            item_selector={
                "partition.$": "$$.Map.Item.Value",
                "partitions.$": "$.run.partitions",
                "interval_start.$": "$.run.interval_start",
                "rerun.$": "$.run.rerun",
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        map_partitions.item_processor(score)
        form = tasks.LambdaInvoke(
            self,
            "FormGroups",
            comment="Merge the partitions' verdicts, form groups, alert, emit metrics",
            lambda_function=group_former,
            payload=sfn.TaskInput.from_object(
                {
                    "form_groups": True,
                    "partitions": sfn.JsonPath.number_at("$.run.partitions"),
                    "interval_start": sfn.JsonPath.string_at("$.run.interval_start"),
                    "rerun": sfn.JsonPath.string_at("$.run.rerun"),
                }
            ),
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        for task in (resolve, score, form):
            task.add_retry(errors=SERVICE_ERRORS, interval=Duration.seconds(2), max_attempts=6, backoff_rate=2)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY if destroy_logs_with_stack else RemovalPolicy.RETAIN,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="Detector fan-out: resolve the interval, score each partition, form the groups",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(resolve.next(map_partitions).next(form)),
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5",
            "lambda:InvokeFunction on '<function ARN>:*' is CDK's grant for the two detector functions' versions "
            "(the state machine invokes only these two); X-Ray and CloudWatch Logs delivery actions have no resource "
            "ARN (the Step Functions guide's logging and X-Ray policies use '*').",
            [matching(r"^Resource::<.*Detector.*\.Arn>:\*$"), matching(r"^Resource::\*$")],
        )
