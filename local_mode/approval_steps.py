"""The post-scoring steps locally: Evaluate (processing job), ApproveResults (callback), Register (registry).

- Processing: SageMaker's contract replayed on folders. Each ProcessingInput's S3 prefix is copied to its
  container path, the entrypoint runs with the container paths mapped to a scratch folder (the
  evaluation job is the same zip the stack uploads, run by `python` with nothing else on its path),
  outputs are copied to their S3 URIs at the end, and property files are parsed for `Std:JsonGet`.
- ApproveResults: SageMaker's queue message goes to the real notifier logic (SQS event); its SNS mail
  (moto on loopback, delivered to an SQS subscription) is written to out/approval/; the real endpoint
  code serves the links on 127.0.0.1; the chosen approver (`--approval auto|prompt|reject`) acts
  through HTTP like a person with a browser, and the step waits for the callback.
- Register: CreateModelPackage's checks, recorded under out/pipeline/model-registry/.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal, cast

from local_mode.aws_emulator import CallbackSteps
from local_mode.local_s3 import LocalS3
from local_mode.pipeline_runner import DefinitionError, ExecutionContext, StepFailedError
from local_mode.progress import Progress

ApprovalMode = Literal["auto", "prompt", "reject"]
PROCESSING_ROOT = "/opt/ml/processing"
EVALUATION_REPOSITORY = "sagemaker-scikit-learn"
RCF_REPOSITORY = "randomcutforest"
APPROVAL_TABLE = "taxi-approvals-local"
LOCAL_ENVIRONMENT = "local"
AUTO_APPROVER = "local-mode (--approval auto)"
REJECT_COMMENT = "rejected by --approval reject"
MAX_METADATA_VALUE_CHARS = 256
_APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")


def _repository(image: str) -> str:
    return image.rsplit("/", 1)[-1].split(":")[0]


def _job_name(context: ExecutionContext, step_name: str) -> str:
    import secrets

    return f"pipelines-{context.execution_id}-{step_name}-{secrets.token_hex(5)}"[:63]


@dataclass
class ProcessingStepExecutor:
    s3: LocalS3
    progress: Progress
    region: str
    account_id: str
    scratch: Path

    def __call__(
        self, name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        app = arguments["AppSpecification"]
        if _repository(str(app["ImageUri"])) != EVALUATION_REPOSITORY:
            raise DefinitionError(f"local mode runs processing jobs only in the {EVALUATION_REPOSITORY} image")
        # Absolute: the job runs with this folder as its working directory, and --out may be relative.
        root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.scratch)).resolve()

        def mapped(value: str) -> str:
            return str(root) + value[len(PROCESSING_ROOT) :] if value.startswith(PROCESSING_ROOT) else value

        for processing_input in arguments.get("ProcessingInputs", []):
            source = processing_input["S3Input"]
            if source.get("S3DataType") != "S3Prefix" or source.get("S3InputMode", "File") != "File":
                raise DefinitionError("local mode supports S3Prefix inputs in File mode only")
            self._download(str(source["S3Uri"]), Path(mapped(str(source["LocalPath"]))))
        command = [mapped(str(part)) for part in [*app["ContainerEntrypoint"], *app.get("ContainerArguments", [])]]
        if command[0] != "python3":
            raise DefinitionError(f"local mode runs python3 entrypoints only, not {command[0]!r}")
        # Like the container: only the job's own zip and the image's Python packages, nothing of this repo.
        environment = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "HOME": str(root)}
        result = subprocess.run(
            [sys.executable, *command[1:]],
            capture_output=True,
            text=True,
            cwd=root,
            env=environment,
            check=False,
            timeout=int(arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 1800)),
        )
        for line in (result.stdout + result.stderr).strip().splitlines()[-5:]:
            self.progress.say("pipeline", f"{name}: {line}")
        if result.returncode != 0:
            tail = " ".join(result.stderr.strip().splitlines()[-2:])
            raise StepFailedError(f"AlgorithmError: processing job exited with code {result.returncode}: {tail}"[:256])
        outputs: dict[str, Any] = {}
        local_paths: dict[str, Path] = {}
        for output in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
            target = str(output["S3Output"]["S3Uri"]).rstrip("/")
            local = Path(mapped(str(output["S3Output"]["LocalPath"])))
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                destination = self.s3.path(f"{target}/{path.relative_to(local)}")
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
            outputs[output["OutputName"]] = {"OutputName": output["OutputName"], "S3Output": {"S3Uri": target}}
            local_paths[output["OutputName"]] = local
        property_files = {}
        for property_file in step.get("PropertyFiles", []):
            folder = local_paths.get(property_file["OutputName"])
            report_path: Path | None = folder / str(property_file["FilePath"]) if folder is not None else None
            if report_path is None or not report_path.is_file():
                raise StepFailedError(f"property file {property_file['PropertyFileName']} was not written")
            property_files[property_file["PropertyFileName"]] = json.loads(report_path.read_text(encoding="utf-8"))
        job_name = _job_name(context, name)
        return {
            "ProcessingJobName": job_name,
            "ProcessingJobArn": f"arn:aws:sagemaker:{self.region}:{self.account_id}:processing-job/{job_name.lower()}",
            "ProcessingJobStatus": "Completed",
            "ProcessingOutputConfig": {"Outputs": outputs},
            "PropertyFiles": property_files,
        }

    def _download(self, uri: str, destination: Path) -> None:
        """S3Prefix: every object whose key starts with the prefix, at its path relative to the prefix's folder."""
        prefix_path = self.s3.path(uri)
        if prefix_path.is_file():
            files, base = [prefix_path], prefix_path.parent
        else:
            files, base = sorted(p for p in prefix_path.rglob("*") if p.is_file()), prefix_path
        if not files:
            raise StepFailedError(f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source')
        for path in files:
            target = destination / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


@dataclass
class RegisterModelStepExecutor:
    s3: LocalS3
    registry_folder: Path
    region: str
    account_id: str
    packages: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        group = str(arguments.get("ModelPackageGroupName") or "")
        if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", group):
            raise StepFailedError(f"ValidationException: invalid ModelPackageGroupName {group!r}")
        status = arguments.get("ModelApprovalStatus", "PendingManualApproval")
        if status not in _APPROVAL_STATUSES:
            raise StepFailedError(
                f"ValidationException: ModelApprovalStatus {status!r} is not one of {_APPROVAL_STATUSES}"
            )
        containers = arguments.get("InferenceSpecification", {}).get("Containers", [])
        if not containers or _repository(str(containers[0].get("Image", ""))) != RCF_REPOSITORY:
            raise DefinitionError("local mode registers only the built-in Random Cut Forest image")
        for container in containers:
            if not self.s3.path(str(container["ModelDataUrl"])).is_file():
                raise StepFailedError(f"ValidationException: model data {container['ModelDataUrl']} does not exist")
        statistics = arguments.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
        if statistics and not self.s3.path(str(statistics["S3Uri"])).is_file():
            raise StepFailedError(f"ValidationException: model metrics {statistics['S3Uri']} do not exist")
        for key, value in (arguments.get("CustomerMetadataProperties") or {}).items():
            if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_CHARS:
                raise StepFailedError(
                    f"ValidationException: CustomerMetadataProperties[{key!r}] must be a string of at most "
                    f"{MAX_METADATA_VALUE_CHARS} characters"
                )
        version = len([p for p in self.packages if p["ModelPackageGroupName"] == group]) + 1
        arn = f"arn:aws:sagemaker:{self.region}:{self.account_id}:model-package/{group}/{version}"
        package = {
            **arguments,
            "ModelPackageArn": arn,
            "ModelPackageVersion": version,
            "ModelPackageStatus": "Completed",
        }
        self.packages.append(package)
        self.registry_folder.mkdir(parents=True, exist_ok=True)
        (self.registry_folder / f"{group}-{version}.json").write_text(json.dumps(package, indent=2), encoding="utf-8")
        return {"ModelPackageArn": arn, "ModelPackageVersion": version, "ModelApprovalStatus": status}


class _HiddenFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[str(values["name"])] = str(values.get("value") or "")


def act_through_the_page(link: str, decision: str, approver: str, comment: str) -> tuple[int, str]:
    """What a person does: open the link (GET), then press the button (POST the page's form, same origin)."""
    with urllib.request.urlopen(link, timeout=10) as page:  # noqa: S310 - the loopback endpoint
        parser = _HiddenFields()
        parser.feed(page.read().decode())
    parts = urllib.parse.urlsplit(link)
    form = urllib.parse.urlencode({**parser.fields, "decision": decision, "approver": approver, "comment": comment})
    request = urllib.request.Request(  # noqa: S310 - the loopback endpoint
        f"{parts.scheme}://{parts.netloc}{parts.path}",
        data=form.encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": f"{parts.scheme}://{parts.netloc}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the loopback endpoint
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@dataclass
class ApprovalStepExecutor:
    """The ApproveResults callback step: notifier -> mail -> page -> decision -> callback."""

    callbacks: CallbackSteps
    invoke_notifier: Callable[[dict[str, Any]], dict[str, Any]]
    read_mail: Callable[[], dict[str, Any] | None]
    mail_folder: Path
    mode: ApprovalMode
    progress: Progress
    region: str
    timeout_seconds: float = 3600.0
    mails: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        from local_mode.pipeline_steps import callback_token, sqs_event

        token = callback_token()
        message = {"token": token, "pipelineExecutionArn": context.execution_arn, "arguments": arguments}
        self.callbacks.expect(token, context.execution_arn)
        self.progress.say("pipeline", f"{name}: message on the approval queue (token {token})")
        response = self.invoke_notifier(sqs_event(str(step["SqsQueueUrl"]), json.dumps(message), self.region))
        if response.get("batchItemFailures"):
            raise StepFailedError("the approval notifier failed to process the queue message (see the log above)")
        mail = self._wait_for_mail(token)
        if mail is not None:
            self._act(mail)
        outcome = self._wait_for_answer(token)
        if not outcome.succeeded:
            raise StepFailedError(outcome.failure_reason)
        for output, value in outcome.output_parameters.items():
            self.progress.say("pipeline", f"{name}: output {output} = {value!r}")
        return {"OutputParameters": dict(outcome.output_parameters)}

    def _wait_for_mail(self, token: str) -> dict[str, Any] | None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.callbacks.wait(token, timeout=0) is not None:
                return None  # the notifier already answered (a failure with a reason)
            mail = self.read_mail()
            if mail is not None:
                self.mails.append(mail)
                self.mail_folder.mkdir(parents=True, exist_ok=True)
                (self.mail_folder / "approval-mail.json").write_text(json.dumps(mail, indent=2), encoding="utf-8")
                (self.mail_folder / "approval-mail.txt").write_text(
                    f"Subject: {mail['Subject']}\n\n{mail['Message']}", encoding="utf-8"
                )
                self.progress.say(
                    "approval", f"mail published to the approvers topic -> {self.mail_folder / 'approval-mail.txt'}"
                )
                return mail
            time.sleep(0.1)
        raise StepFailedError("the approval notifier published no mail")

    def _act(self, mail: dict[str, Any]) -> None:
        links = dict(
            (decision, link)
            for link, decision in re.findall(
                r"(http://127\.0\.0\.1:\d+/a/[A-Za-z0-9_-]{43}\?decision=(approve|reject))", mail["Message"]
            )
        )
        if self.mode == "prompt":
            # Printed even with --quiet: without the links nobody can answer, and the run would wait.
            self.progress.always(
                f"\n  Open one of these links in a browser to decide (the pipeline waits):\n"
                f"    approve: {links['approve']}\n    reject:  {links['reject']}\n"
            )
            return
        decision, approver, comment = (
            ("approve", AUTO_APPROVER, "approved by the local mode")
            if self.mode == "auto"
            else ("reject", AUTO_APPROVER.replace("auto", "reject"), REJECT_COMMENT)
        )

        def press() -> None:
            status, _ = act_through_the_page(links[decision], decision, approver, comment)
            self.progress.say(
                "approval", f"GET {links[decision].split('/a/')[0]}/a/... then POST {decision}: HTTP {status}"
            )

        threading.Thread(target=press, name="local-approver", daemon=True).start()

    def _wait_for_answer(self, token: str) -> Any:
        deadline = time.monotonic() + self.timeout_seconds
        while time.monotonic() < deadline:
            outcome = self.callbacks.wait(token, timeout=0.5)
            if outcome is not None:
                return outcome
        raise StepFailedError(f"no decision for token {token} within {self.timeout_seconds:.0f}s")


@dataclass
class CallbackRouter:
    """SageMaker sends each callback step's message to that step's queue: route by SqsQueueUrl."""

    by_queue: dict[str, Callable[..., dict[str, Any]]]

    def __call__(
        self, name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext
    ) -> dict[str, Any]:
        queue = str(step.get("SqsQueueUrl"))
        if queue not in self.by_queue:
            raise DefinitionError(f"step {name!r} sends to {queue}, a queue nothing consumes in local mode")
        return self.by_queue[queue](name, arguments, step, context)


class _LocalS3Objects:
    """The notifier's S3 GetObject over the local mode's S3 folder (NoSuchKey like S3 for a missing key)."""

    def __init__(self, s3: LocalS3) -> None:
        self._s3 = s3

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        import io

        from botocore.exceptions import ClientError

        path = self._s3.path(f"s3://{Bucket}/{Key}")
        if not path.is_file():
            raise ClientError(
                {"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}}, "GetObject"
            )
        return {"Body": io.BytesIO(path.read_bytes())}


@dataclass
class LocalApprovalSystem:
    endpoint_url: str
    notifier: Callable[[dict[str, Any]], dict[str, Any]]
    read_mail: Callable[[], dict[str, Any] | None]
    store: Any


@contextmanager
def local_approval_system(
    s3: LocalS3, sagemaker: Any, region: str, expires_hours: int
) -> Iterator[LocalApprovalSystem]:
    """moto on loopback (DynamoDB table, SNS topic + an SQS 'mailbox'), the endpoint served on 127.0.0.1,
    and the notifier's logic run the way its handler runs it for an SQS batch."""
    import logging

    import boto3
    from approval_notifier.config import NotifierConfig
    from approval_notifier.logic import delivery_of_record, handle_approval_message
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from approval.store import ApprovalStore, table_definition
    from local_mode.approval_server import LocalApprovalEndpoint
    from local_mode.dynamodb_server import loopback_dynamodb
    from local_mode.local_compute import FAKE_CREDENTIALS
    from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server would log every request
    with loopback_dynamodb() as moto:
        session = boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=region,
        )
        dynamodb = session.client("dynamodb", endpoint_url=moto.endpoint_url)
        sns = session.client("sns", endpoint_url=moto.endpoint_url)
        sqs = session.client("sqs", endpoint_url=moto.endpoint_url)
        dynamodb.create_table(**table_definition(APPROVAL_TABLE))
        topic_arn = sns.create_topic(Name="taxi-approvers-local")["TopicArn"]
        mailbox = sqs.create_queue(QueueName="approvers-mailbox")["QueueUrl"]
        # moto keeps its state per process, not per server: remove what this run made, so the next
        # in-process run (the tests) starts from nothing, as a fresh machine would.
        try:
            store = ApprovalStore(dynamodb, APPROVAL_TABLE)
            mailbox_arn = sqs.get_queue_attributes(QueueUrl=mailbox, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=mailbox_arn)

            def read_mail() -> dict[str, Any] | None:
                messages = sqs.receive_message(QueueUrl=mailbox, MaxNumberOfMessages=1).get("Messages", [])
                if not messages:
                    return None
                sqs.delete_message(QueueUrl=mailbox, ReceiptHandle=messages[0]["ReceiptHandle"])
                return dict(json.loads(messages[0]["Body"]))

            with LocalApprovalEndpoint(store, sagemaker) as endpoint:
                config = NotifierConfig(APPROVAL_TABLE, topic_arn, endpoint.url, expires_hours, LOCAL_ENVIRONMENT)
                processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
                objects = _LocalS3Objects(s3)

                def record_handler(record: SQSRecord) -> None:
                    handle_approval_message(
                        record.body,
                        config,
                        store=store,
                        s3=cast(Any, objects),
                        sns=sns,
                        sagemaker=sagemaker,
                        retrier=Retrier(policy=LAMBDA_RETRY_POLICY),
                        clock=time.time,
                        delivery=delivery_of_record(record.attributes.approximate_receive_count, config),
                    )

                def notifier(event: dict[str, Any]) -> dict[str, Any]:
                    return dict(
                        process_partial_response(event=event, record_handler=record_handler, processor=processor)
                    )

                yield LocalApprovalSystem(
                    endpoint_url=endpoint.url, notifier=notifier, read_mail=read_mail, store=store
                )
        finally:
            dynamodb.delete_table(TableName=APPROVAL_TABLE)
            sns.delete_topic(TopicArn=topic_arn)  # with its subscriptions
            sqs.delete_queue(QueueUrl=mailbox)
