"""The SQS queue a SageMaker CallbackStep writes to, with its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_constructs.checker_skips import skip_cfn_lint, skip_checkov

# The handler needs up to one timeout per receive; six times it (AWS's guidance for
# Lambda event sources) leaves room for retries before a message becomes visible again.
VISIBILITY_TIMEOUT_FACTOR = 6


class CallbackQueue(Construct):
    """Encrypted, TLS-only queue with a DLQ; only SageMaker, on behalf of our pipeline, may send.

    ``pipeline_name`` is the name of the pipeline that will write to the queue:
    SageMaker's sends are accepted only with ``aws:SourceAccount`` = this account
    and ``aws:SourceArn`` = that pipeline (or one of its executions), which
    closes the confused-deputy path.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        handler_timeout: Duration,
        max_receive_count: int,
        use_customer_managed_key: bool,
        destroy_with_stack: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key: kms.Key | None = None
        if use_customer_managed_key:
            self.key = kms.Key(
                self,
                "Key",
                description="Encrypts the SageMaker callback queue and its dead-letter queue",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.DESTROY if destroy_with_stack else RemovalPolicy.RETAIN,
                pending_window=Duration.days(7),
            )
            # SageMaker encrypts the messages it sends; without this grant a CallbackStep on a
            # KMS queue fails without a visible error.
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowSageMakerToSendToTheCallbackQueue",
                    principals=[iam.ServicePrincipal("sagemaker.amazonaws.com")],
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                )
            )
        encryption = sqs.QueueEncryption.KMS if self.key else sqs.QueueEncryption.SQS_MANAGED

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=encryption,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=encryption,
            encryption_master_key=self.key,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(handler_timeout.to_seconds() * VISIBILITY_TIMEOUT_FACTOR),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
        )
        skip_cfn_lint(
            self.dead_letter_queue,
            "ES6000",
            "This queue is itself the dead-letter queue of the callback queue; a redrive policy on it would loop.",
        )
        if self.key is None:
            for queue in (self.queue, self.dead_letter_queue):
                skip_checkov(
                    queue,
                    "CKV_AWS_27",
                    "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); checkov's rule only recognises a "
            "KmsMasterKeyId. A customer-managed key is used where configured (data_prep.queue_kms).",
                )
        pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSageMakerPipelineCallbacks",
                principals=[iam.ServicePrincipal("sagemaker.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": [pipeline_arn, f"{pipeline_arn}/*"]},
                },
            )
        )
