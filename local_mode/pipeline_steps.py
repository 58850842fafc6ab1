"""Executors for the pipeline's step types: what SageMaker would do for Callback, Training, Model, Transform.

- Callback: put SageMaker's queue message on an SQS-shaped event, hand it to the REAL callback handler
  logic, and wait until someone answers the token through the loopback SageMaker API.
- Training / Model / Transform: the built-in Random Cut Forest, emulated with krcf (see rcf_model).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_mode.aws_emulator import CallbackSteps
from local_mode.local_s3 import LocalS3
from local_mode.pipeline_runner import DefinitionError, ExecutionContext, StepFailedError
from local_mode.progress import Progress
from local_mode.rcf_model import (
    CSV,
    JSON_LINES,
    MODEL_ARCHIVE_NAME,
    RCF_REQUEST_TYPES,
    RCF_RESPONSE_TYPES,
    DataProcessing,
    ModelError,
    RcfHyperparameters,
    load_model_archive,
    read_feature_rows,
    train_forest,
    transform_records,
    write_model_archive,
)

RCF_REPOSITORY = "randomcutforest"
# After the prep task exits without answering, SageMaker would wait (until the watchdog fails the step);
# locally the run gives the answer this long to arrive, then fails the step itself.
ANSWER_GRACE_SECONDS = 5.0


def callback_token() -> str:
    """What SageMaker puts in the message: 10 random letters and digits."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(10))


def sqs_event(queue_url: str, body: str, region: str) -> dict[str, Any]:
    """An SQS -> Lambda event with one record, as the event source mapping delivers it."""
    account, queue_name = queue_url.rstrip("/").split("/")[-2:]
    sent = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": secrets.token_urlsafe(32),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": sent,
                    "SenderId": "AIDASAGEMAKERPIPELINES",
                    "ApproximateFirstReceiveTimestamp": sent,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{region}:{account}:{queue_name}",
                "awsRegion": region,
            }
        ]
    }


CallbackHandler = Callable[[dict[str, Any]], dict[str, Any]]
"""Invokes the callback handler with an SQS event; returns its partial batch response."""
TaskWatch = Callable[[str], int | None]
"""For a callback token: the exit code of its prep task once it has exited, else None."""


@dataclass
class CallbackStepExecutor:
    callbacks: CallbackSteps
    invoke_handler: CallbackHandler
    task_exit_code: TaskWatch
    progress: Progress
    region: str
    timeout_seconds: float = 1800.0
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        token = callback_token()
        message = {"token": token, "pipelineExecutionArn": context.execution_arn, "arguments": arguments}
        self.messages.append(message)
        self.callbacks.expect(token, context.execution_arn)
        self.progress.say("pipeline", f"{name}: message on the callback queue (token {token}): {json.dumps(arguments)}")
        response = self.invoke_handler(sqs_event(str(step["SqsQueueUrl"]), json.dumps(message), self.region))
        if response.get("batchItemFailures"):
            # In AWS the message would be retried and end in the DLQ, with the step waiting until it times out.
            raise StepFailedError("the callback handler failed to process the queue message (see the log above)")
        outcome = self._wait_for_answer(token)
        if not outcome.succeeded:
            raise StepFailedError(outcome.failure_reason)
        declared = [item["OutputName"] for item in step.get("OutputParameters", [])]
        missing = [output for output in declared if output not in outcome.output_parameters]
        if missing:
            raise StepFailedError(f"the callback did not provide output parameter(s) {', '.join(missing)}")
        for output, value in outcome.output_parameters.items():
            self.progress.say("pipeline", f"{name}: output {output} = {value}")
        return {"OutputParameters": dict(outcome.output_parameters)}

    def _wait_for_answer(self, token: str) -> Any:
        deadline = time.monotonic() + self.timeout_seconds
        exited_at: float | None = None
        while time.monotonic() < deadline:
            outcome = self.callbacks.wait(token, timeout=0.5)
            if outcome is not None:
                return outcome
            exit_code = self.task_exit_code(token)
            if exit_code is not None:
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > ANSWER_GRACE_SECONDS:
                    raise StepFailedError(f"the prep task exited with code {exit_code} without answering the callback")
        raise StepFailedError(f"no callback for token {token} within {self.timeout_seconds:.0f}s")


def _job_name(context: ExecutionContext, step_name: str) -> str:
    return f"pipelines-{context.execution_id}-{step_name}-{secrets.token_hex(5)}"[:63]


def _check_rcf_image(image: str) -> None:
    repository = image.rsplit("/", 1)[-1].split(":")[0]
    if repository != RCF_REPOSITORY:
        raise DefinitionError(
            f"image {image!r} is not supported: local mode emulates only the built-in Random Cut Forest"
        )


@dataclass
class TrainingStepExecutor:
    s3: LocalS3
    progress: Progress
    region: str
    account_id: str

    def __call__(
        self, name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        _check_rcf_image(arguments["AlgorithmSpecification"]["TrainingImage"])
        parameters = RcfHyperparameters.from_definition(arguments.get("HyperParameters", {}))
        channels = {channel["ChannelName"]: channel for channel in arguments.get("InputDataConfig", [])}
        if "train" not in channels:
            raise ModelError(f"Random Cut Forest needs a 'train' channel; the step has {', '.join(channels) or 'none'}")
        train_uri = channels["train"]["DataSource"]["S3DataSource"]["S3Uri"]
        files = self.s3.data_files(train_uri)
        if not files:
            raise StepFailedError(
                f'ClientError: No S3 objects found under S3 URL "{train_uri}" given in input data source'
            )
        _refuse_markers(self.s3, train_uri, "training channel train")
        points = read_feature_rows(files, parameters.feature_dim)
        self.progress.say(
            "pipeline",
            f"{name}: Random Cut Forest on {len(points)} records x {parameters.feature_dim} features "
            f"({parameters.num_trees} trees, {parameters.num_samples_per_tree} samples per tree)",
        )
        forest = train_forest(points, parameters)
        job_name = _job_name(context, name)
        output_path = str(arguments["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
        artifact_uri = f"{output_path}/{job_name}/output/{MODEL_ARCHIVE_NAME}"
        write_model_archive(forest, parameters, self.s3.path(artifact_uri))
        self.progress.say("pipeline", f"{name}: model artifact {artifact_uri}")
        return {
            "TrainingJobName": job_name,
            "TrainingJobArn": f"arn:aws:sagemaker:{self.region}:{self.account_id}:training-job/{job_name}",
            "TrainingJobStatus": "Completed",
            "HyperParameters": dict(arguments.get("HyperParameters", {})),
            "ModelArtifacts": {"S3ModelArtifacts": artifact_uri},
            "OutputDataConfig": dict(arguments["OutputDataConfig"]),
            "AlgorithmSpecification": dict(arguments["AlgorithmSpecification"]),
        }


@dataclass
class ModelStepExecutor:
    region: str
    account_id: str
    models: dict[str, str] = field(default_factory=dict)  # model name -> artifact URI

    def __call__(
        self, name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        container = arguments.get("PrimaryContainer") or {}
        _check_rcf_image(str(container.get("Image", "")))
        model_data = container.get("ModelDataUrl")
        if not model_data:
            raise ModelError("PrimaryContainer.ModelDataUrl is required")
        model_name = _job_name(context, name)
        self.models[model_name] = str(model_data)
        return {
            "ModelName": model_name,
            "ModelArn": f"arn:aws:sagemaker:{self.region}:{self.account_id}:model/{model_name.lower()}",
            "PrimaryContainer": dict(container),
            "ExecutionRoleArn": arguments.get("ExecutionRoleArn"),
        }


@dataclass
class TransformStepExecutor:
    s3: LocalS3
    models: dict[str, str]
    progress: Progress
    region: str
    account_id: str
    output_files: list[Path] = field(default_factory=list)

    def __call__(
        self, name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        model_name = str(arguments["ModelName"])
        if model_name not in self.models:
            raise StepFailedError(f'ValidationException: Could not find model "{model_name}"')
        transform_input = arguments["TransformInput"]
        transform_output = arguments.get("TransformOutput", {})
        content_type = str(transform_input.get("ContentType", ""))
        accept = str(transform_output.get("Accept", ""))
        processing_arguments = arguments.get("DataProcessing", {})
        processing = DataProcessing(
            input_filter=processing_arguments.get("InputFilter", "$"),
            output_filter=processing_arguments.get("OutputFilter", "$"),
            join_source=processing_arguments.get("JoinSource", "None"),
        )
        _check_transform_formats(content_type, accept, transform_input, transform_output, processing)
        forest = load_model_archive(self.s3.path(self.models[model_name]))
        input_uri = transform_input["DataSource"]["S3DataSource"]["S3Uri"]
        output_path = str(transform_output["S3OutputPath"]).rstrip("/")
        input_files = self.s3.data_files(input_uri)
        if not input_files:
            raise StepFailedError(f'ClientError: No S3 objects found under S3 URL "{input_uri}"')
        _refuse_markers(self.s3, input_uri, "transform input")
        # AssembleWith Line: "To add a newline character at the end of every transformed record, specify Line."
        separator = "\n" if transform_output.get("AssembleWith") == "Line" else ""
        records = 0
        for input_file in input_files:
            # Batch transform names each output after its input object, plus `.out`.
            output_file = self.s3.path(f"{output_path}/{input_file.name}.out")
            output_file.parent.mkdir(parents=True, exist_ok=True)
            with input_file.open(encoding="utf-8") as lines, output_file.open("w", encoding="utf-8") as out:
                try:
                    for answer in transform_records(lines, forest, processing, content_type):
                        out.write(answer + separator)
                        records += 1
                except ModelError as error:
                    raise StepFailedError(f"ClientError: {input_file.name}: {error}") from None
            self.output_files.append(output_file)
        self.progress.say(
            "pipeline",
            f"{name}: scored {records} records (InputFilter {processing.input_filter}, JoinSource "
            f"{processing.join_source}, OutputFilter {processing.output_filter}) -> {output_path}/",
        )
        job_name = _job_name(context, name)
        return {
            "TransformJobName": job_name,
            "TransformJobArn": f"arn:aws:sagemaker:{self.region}:{self.account_id}:transform-job/{job_name.lower()}",
            "TransformJobStatus": "Completed",
            "ModelName": model_name,
            "TransformOutput": {"S3OutputPath": output_path, "Accept": accept},  # as DescribeTransformJob
            "TransformInput": dict(transform_input),
        }


def _refuse_markers(s3: LocalS3, uri: str, what: str) -> None:
    """SageMaker reads every object under an S3Prefix as data; a marker there would be read as a record."""
    markers = s3.marker_objects(uri)
    if markers:
        raise StepFailedError(
            f"ClientError: the {what} ({uri}) holds {', '.join(markers)}, which SageMaker reads as data like every "
            "object under an S3Prefix; the prefix must hold only data objects"
        )


# ContentType -> the SplitType, and Accept -> the AssembleWith, that "Use Batch Transform with Built-in
# Algorithms" recommends for them.
_SPLIT_TYPES = {CSV: "Line", JSON_LINES: "Line"}
_ASSEMBLE_WITH = {JSON_LINES: "Line"}


def _check_transform_formats(
    content_type: str,
    accept: str,
    transform_input: dict[str, Any],
    transform_output: dict[str, Any],
    processing: DataProcessing,
) -> None:
    """Refuse what Random Cut Forest or batch transform would refuse, and what local mode cannot emulate."""
    if accept not in RCF_RESPONSE_TYPES:
        raise StepFailedError(
            f"ClientError: Random Cut Forest does not answer Accept {accept or '(none)'!r}: its documented response "
            f"formats are {', '.join(RCF_RESPONSE_TYPES)} (RCF Response Formats)"
        )
    if content_type not in RCF_REQUEST_TYPES:
        raise StepFailedError(
            f"ClientError: Random Cut Forest does not read ContentType {content_type or '(none)'!r}: "
            f"it reads {', '.join(RCF_REQUEST_TYPES)}"
        )
    if processing.join_source == "Input" and content_type != accept:
        # "If you use an algorithm with the DataProcessing structure, it must support your chosen format for
        # both input and output files ... set both the Content Type and Accept parameters to one of ..."
        raise StepFailedError(
            f"ClientError: JoinSource Input needs the same input and output format, got ContentType {content_type!r} "
            f"and Accept {accept!r}"
        )
    if content_type not in _SPLIT_TYPES or accept not in _ASSEMBLE_WITH:
        raise DefinitionError(
            f"local mode emulates ContentType {CSV} or {JSON_LINES} with Accept {JSON_LINES}, "
            f"not {content_type!r} -> {accept!r}"
        )
    if transform_input.get("SplitType") != _SPLIT_TYPES[content_type]:
        raise StepFailedError(
            f"ClientError: ContentType {content_type} is split into records with SplitType Line, "
            f"got {transform_input.get('SplitType', 'None')!r}"
        )
    if transform_output.get("AssembleWith", "None") not in ("Line", "None"):
        assemble_with = transform_output["AssembleWith"]
        raise StepFailedError(f"ClientError: AssembleWith must be Line or None, got {assemble_with!r}")
