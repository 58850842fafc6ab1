"""The ECS Fargate task that runs the Glue prep job, watches it and reports back to SageMaker."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Fn, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk.aws_ecr_assets import Platform
from constructs import Construct

from app_config import DataPrepConfig
from cdk_constructs.callback_permissions import SENDS_CALLBACKS as SENDS_CALLBACKS
from cdk_constructs.callback_permissions import grant_send_callbacks
from cdk_constructs.callback_table import CallbackTokenTable
from cdk_constructs.checker_skips import LOG_GROUP_SERVICE_ENCRYPTION, skip_checkov
from cdk_constructs.nag import acknowledge
from cdk_constructs.python_function import retention_days
from cdk_constructs.service_roles import service_principal

REPO_ROOT = Path(__file__).resolve().parents[1]
# The name the handler overrides and the watchdog looks for in task events.
CONTAINER_NAME = "FargateTask"
# Build context is the repository root (the image needs pipeline_callback/ too); keep everything else out.
_IMAGE_CONTEXT_EXCLUDES = ["*", "!fargate_task", "!pipeline_callback", "**/__pycache__", "**/*.pyc"]


class TaskNetwork(Construct):
    """Where the task runs: a small VPC with public subnets and no NAT gateway, or subnets from config."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DataPrepConfig, log_retention: int) -> None:
        super().__init__(scope, construct_id)
        if config.vpc_id:
            # Imported by attribute, not looked up: synth stays free of AWS calls.
            self.vpc: ec2.IVpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=config.vpc_id,
                availability_zones=[Fn.select(i, Fn.get_azs()) for i in range(len(config.subnet_ids))],
                public_subnet_ids=list(config.subnet_ids),
            )
            self.subnet_ids = list(config.subnet_ids)
            self.assign_public_ip = False
        else:
            vpc = ec2.Vpc(
                self,
                "Vpc",
                max_azs=2,
                nat_gateways=0,
                subnet_configuration=[
                    ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
                ],
            )
            flow_logs = logs.LogGroup(
                self, "FlowLogs", retention=retention_days(log_retention), removal_policy=RemovalPolicy.DESTROY
            )
            skip_checkov(flow_logs, "CKV_AWS_158", LOG_GROUP_SERVICE_ENCRYPTION)
            flow_log_role = iam.Role(
                self,
                "FlowLogRole",
                assumed_by=service_principal(self, "vpc-flow-logs.amazonaws.com"),
                description="Delivers the prep VPC's rejected-traffic flow log to its log group",
            )
            vpc.add_flow_log(
                "FlowLog",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs, flow_log_role),
                traffic_type=ec2.FlowLogTrafficType.REJECT,
            )
            self.vpc = vpc
            self.subnet_ids = [subnet.subnet_id for subnet in vpc.public_subnets]
            # Without a NAT gateway the task reaches the AWS APIs through its public IP.
            self.assign_public_ip = True
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="Prep task: no inbound; outbound HTTPS to the AWS APIs only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")


class PrepTask(Construct):
    """Cluster + Fargate task definition whose image is built from fargate_task/Dockerfile at deploy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DataPrepConfig,
        glue_job_arn: str,
        pipeline_name: str,
        table: CallbackTokenTable,
        network: TaskNetwork,
        log_retention: int,
        destroy_logs_with_stack: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=network.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=service_principal(self, "ecs-tasks.amazonaws.com"),
            description="Prep task: run and watch the one Glue prep job, report to SageMaker",
        )
        # Start and watch the one job; stop it when Fargate stops the task (SIGTERM).
        self.task_role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
                resources=[glue_job_arn],
            )
        )
        grant_send_callbacks(self.task_role, pipeline_name)
        table.grant_record_access(self.task_role)
        execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=service_principal(self, "ecs-tasks.amazonaws.com"),
            description="Pulls the prep task's image and writes its logs",
        )

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=config.task_cpu,
            memory_limit_mib=config.task_memory_mib,
            task_role=self.task_role,
            execution_role=execution_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention_days(log_retention),
            removal_policy=RemovalPolicy.DESTROY if destroy_logs_with_stack else RemovalPolicy.RETAIN,
        )
        skip_checkov(self.log_group, "CKV_AWS_158", LOG_GROUP_SERVICE_ENCRYPTION)
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file="fargate_task/Dockerfile",
                exclude=_IMAGE_CONTEXT_EXCLUDES,
                ignore_mode=IgnoreMode.DOCKER,
                platform=Platform.LINUX_AMD64,
            ),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="prep-task", log_group=self.log_group),
            environment={
                "POLL_INTERVAL_SECONDS": str(config.poll_interval_seconds),
                "FIRST_POLL_SECONDS": str(config.first_poll_seconds),
                # The Glue job's own timeout plus a margin: the task never waits forever.
                "MAX_WAIT_SECONDS": str(config.glue_timeout_minutes * 60 + 600),
                **table.environment(config),
                "PYTHONUNBUFFERED": "1",
                # botocore resolves the region from AWS_DEFAULT_REGION; Fargate's AWS_REGION alone is not enough.
                "AWS_DEFAULT_REGION": Stack.of(self).region,
            },
            readonly_root_filesystem=True,
            essential=True,
        )
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The only environment variables are polling intervals, a deadline and the token table's name; "
            "per-run values arrive as RunTask overrides and nothing secret is passed.",
        )
        if self.task_definition.execution_role is not None:
            acknowledge(
                self.task_definition.execution_role,
                "AwsSolutions-IAM5",
                "ecr:GetAuthorizationToken has no resource-level permissions; "
                "image pulls are scoped to the asset repository.",
                ["Resource::*"],
            )
        # Tasks this cluster runs (what the handler may stop).
        self.task_arn_pattern = Stack.of(self).format_arn(
            service="ecs", resource="task", resource_name=f"{self.cluster.cluster_name}/*"
        )
