"""template.yaml deployed into the local cloud with ``cloudformation.create_stack``, and what that deployment made.

:func:`deploy_template` translates the template (:mod:`.sam_template`), uploads the code it names, registers the
emulations of the types moto lacks (:mod:`.cfn_resources`) and creates the stack on a moto server running in this
process; it returns a :class:`DeployedTemplate`. :func:`repair_stored_documents` fixes the policy documents moto
stores as dicts, and :func:`teardown` deletes what ``DeletionPolicy: Retain`` keeps, so a stack of the same name can
be created again.

What moto's CloudFormation drops, mis-stores or does not check, and what is done about each:
Design: docs/design/local-cloud.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from . import cfn_resources
from .sam_template import ARTIFACT_BUCKET, TEMPLATE_PATH, translated_template

ClientFactory = Callable[[str], Any]
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
ROOT = TEMPLATE_PATH.parent
FUNCTION_TYPE = "AWS::Lambda::Function"


class TemplateDeployError(RuntimeError):
    """create_stack did not complete (the stack's status and reason are in the message)."""


@dataclass(frozen=True)
class DeployedResource:
    """One resource of the stack: its type, physical id (``Ref``) and ARN (None where the type has none)."""

    logical_id: str
    type: str
    physical_id: str
    arn: str | None


@dataclass(frozen=True)
class FunctionIdentity:
    """A function of the stack as the local cloud runs it: names, its role, the credentials it was issued."""

    logical_id: str
    function_name: str
    function_arn: str
    role_arn: str
    access_key_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployedTemplate:
    """What :func:`deploy_template` created, for the local stack and the IAM evaluator.

    - ``template``: the translated CloudFormation template (plain JSON, intrinsics unresolved).
    - ``parameters``: every parameter value the stack was created with (``{"Schedule": "1s", ...}``).
    - ``resources``: logical id -> :class:`DeployedResource` (type, physical id = what ``Ref`` gives, ARN; moto gives
      the layer version and the Lambda permission no physical id: empty there);
      resources a false condition left out are absent.
    - ``outputs``: the stack's Outputs, resolved.
    - ``pseudo``: ``AWS::AccountId``, ``AWS::Region``, ``AWS::Partition``, ``AWS::StackName``, ``AWS::StackId``,
      ``AWS::URLSuffix``, for resolving ``Sub``.
    - ``functions``: logical id -> :class:`FunctionIdentity` (filled in by the local stack once the
      functions' credentials are issued: each access key id maps to its role).
    - ``resource_policies``: the resolved resource policies kept out of moto (the bucket policy) or never
      evaluated there (topic policies), keyed ``(resource type, physical id)``.
    """

    stack_name: str
    stack_id: str
    template: dict[str, Any]
    parameters: dict[str, str]
    resources: dict[str, DeployedResource]
    outputs: dict[str, str]
    pseudo: dict[str, str]
    functions: dict[str, FunctionIdentity] = field(default_factory=dict)
    resource_policies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def physical_id(self, logical_id: str) -> str:
        return self.resources[logical_id].physical_id

    def role_of_access_key(self, access_key_id: str) -> str | None:
        """The role ARN a function's credentials belong to (None: not a function's key)."""
        for function in self.functions.values():
            if access_key_id in function.access_key_ids:
                return function.role_arn
        return None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for a file another tool reads)."""
        return {
            "stack_name": self.stack_name,
            "stack_id": self.stack_id,
            "template": self.template,
            "parameters": self.parameters,
            "resources": {k: vars(v) for k, v in self.resources.items()},
            "outputs": self.outputs,
            "pseudo": self.pseudo,
            "functions": {k: {**vars(v), "access_key_ids": list(v.access_key_ids)} for k, v in self.functions.items()},
            "resource_policies": [{"type": t, "physical_id": p, "policy": d} for (t, p), d in self.resource_policies.items()],
        }


def code_archive(directory: Path) -> bytes:
    """A zip of ``directory`` as ``sam package`` would upload it (no ``__pycache__``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def upload_code(s3: Any, template: Mapping[str, Any], bucket: str = ARTIFACT_BUCKET) -> None:
    """Put every ``Code``/``Content`` S3 object the template names into ``bucket`` (created if missing; same content kept)."""
    region = s3.meta.region_name
    located = {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket, **located)  # one bucket for every region's stack (S3 names are global)
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        code = props.get("Code") or props.get("Content")
        if isinstance(code, dict) and code.get("S3Bucket") == bucket:
            key = code["S3Key"]
            body = code_archive(ROOT / key)
            try:
                stored = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
            except ClientError:
                stored = ""
            if stored != hashlib.md5(body, usedforsecurity=False).hexdigest():
                s3.put_object(Bucket=bucket, Key=key, Body=body)


def deploy_template(
    client: ClientFactory,
    stack_name: str,
    parameters: Mapping[str, str],
    *,
    region: str,
    account_id: str,
    template_path: str | Path = TEMPLATE_PATH,
    extra_outputs: Mapping[str, str] | None = None,
) -> DeployedTemplate:
    """Create the stack from template.yaml with ``parameters`` (a stack of that name is torn down first).

    ``client`` makes boto3 clients for the moto server (which must run in this process). ``extra_outputs``
    adds literal Outputs (the local stack names its demo caller and operator roles this way).
    """
    cfn_resources.register()
    template = translated_template(template_path)
    for key, value in (extra_outputs or {}).items():
        template.setdefault("Outputs", {})[key] = {"Value": value, "Description": "local stack only"}
    cloudformation = client("cloudformation")
    if _stack_exists(cloudformation, stack_name):
        teardown(client, stack_name, region=region, account_id=account_id)
    upload_code(client("s3"), template)
    given = [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()]
    try:
        stack_id = cloudformation.create_stack(
            StackName=stack_name, TemplateBody=json.dumps(template), Parameters=given, Capabilities=CAPABILITIES
        )["StackId"]
    except ClientError as exc:
        raise TemplateDeployError(f"create_stack {stack_name}: {exc}") from None
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise TemplateDeployError(f"stack {stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    resources = _resources(cloudformation, stack_name, account_id, region)
    repair_stored_documents(resources, account_id, region)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return DeployedTemplate(
        stack_name=stack_name,
        stack_id=stack_id,
        template=template,
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        resources=resources,
        outputs=outputs,
        pseudo={
            "AWS::AccountId": account_id,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::StackId": stack_id,
            "AWS::URLSuffix": "amazonaws.com",
        },
        resource_policies={
            (kind, physical): document
            for (account, reg, kind, physical), document in cfn_resources.resource_policies().items()
            if account == account_id and reg == region and any(r.physical_id == physical for r in resources.values())
        },
    )


def _stack_exists(cloudformation: Any, stack_name: str) -> bool:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError:
        return False
    return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)


def _resources(cloudformation: Any, stack_name: str, account_id: str, region: str) -> dict[str, DeployedResource]:
    """Logical id -> resource, ARNs taken from moto's own resource objects (``GetAtt Arn``) where the type has one."""
    from moto.cloudformation.models import cloudformation_backends

    stack_models = {s.name: s for s in cloudformation_backends[account_id][region].stacks.values() if s.name == stack_name}
    resource_map = stack_models[stack_name].resource_map if stack_name in stack_models else {}
    found: dict[str, DeployedResource] = {}
    for item in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]:
        logical = item.get("LogicalResourceId")
        physical = item.get("PhysicalResourceId")
        if not logical:
            continue  # left out by a false condition (moto lists it without ids)
        arn = _arn(resource_map, logical, physical or "")
        # moto gives a layer version and a permission no physical id; a layer version's Ref is its ARN
        found[logical] = DeployedResource(logical, item["ResourceType"], physical or arn or "", arn)
    return found


def _arn(resource_map: Any, logical: str, physical: str) -> str | None:
    if physical.startswith("arn:"):
        return physical
    try:
        model = resource_map[logical]
    except (KeyError, TypeError):
        return None
    has = getattr(model, "has_cfn_attr", None)
    if has is not None and has("Arn"):
        with contextlib.suppress(Exception):
            return str(model.get_cfn_attribute("Arn"))
    return None


def repair_stored_documents(resources: Mapping[str, DeployedResource], account_id: str, region: str) -> None:
    """Store the stack's KMS key policies and roles' inline policies as JSON text, as their APIs do (moto keeps dicts,
    and ``None`` where the template says ``AWS::NoValue``)."""
    from moto.iam.models import iam_backends
    from moto.kms.models import kms_backends

    kms = kms_backends[account_id][region]
    iam = iam_backends[account_id]["global"]
    for resource in resources.values():
        if resource.type == "AWS::KMS::Key":
            key = kms.keys.get(resource.physical_id)
            stored: Any = None if key is None else key.policy
            if key is not None and not isinstance(stored, str):
                key.policy = json.dumps(cfn_resources.without_no_value(stored))
        elif resource.type == "AWS::IAM::Role":
            role = iam.get_role(resource.physical_id)
            inline: dict[str, Any] = dict(role.policies)
            role.policies = {name: d if isinstance(d, str) else json.dumps(cfn_resources.without_no_value(d)) for name, d in inline.items()}
            trust: Any = role.assume_role_policy_document
            if not isinstance(trust, str):
                role.assume_role_policy_document = json.dumps(cfn_resources.without_no_value(trust))


def teardown(client: ClientFactory, stack_name: str, *, region: str, account_id: str) -> None:
    """Delete the stack and what its ``Retain`` policy leaves behind (moto keeps state per process)."""
    cloudformation = client("cloudformation")
    try:
        resources = _resources(cloudformation, stack_name, account_id, region)
    except ClientError:
        return
    with contextlib.suppress(ClientError):
        cloudformation.delete_stack(StackName=stack_name)
    for resource in resources.values():
        with contextlib.suppress(ClientError):
            _delete_retained(client, resource)
    with contextlib.suppress(ClientError):  # the rotator's revocation list: created outside the stack, per stack name
        client("ssm").delete_parameter(Name=f"/jwks-rotator/{stack_name}/revoked-kids")


def _delete_retained(client: ClientFactory, resource: DeployedResource) -> None:
    if resource.type == "AWS::SecretsManager::Secret":
        secrets = client("secretsmanager")
        replicas = [r["Region"] for r in secrets.describe_secret(SecretId=resource.physical_id).get("ReplicationStatus", [])]
        if replicas:  # a secret with replicas cannot be deleted (the primary's stack, with Regions)
            secrets.remove_regions_from_replication(SecretId=resource.physical_id, RemoveReplicaRegions=replicas)
        secrets.delete_secret(SecretId=resource.physical_id, ForceDeleteWithoutRecovery=True)
    elif resource.type == "AWS::Logs::LogGroup":
        client("logs").delete_log_group(logGroupName=resource.physical_id)
    elif resource.type == "AWS::KMS::Key":
        client("kms").schedule_key_deletion(KeyId=resource.physical_id, PendingWindowInDays=7)
    elif resource.type == "AWS::S3::Bucket":
        s3 = client("s3")
        versions = s3.list_object_versions(Bucket=resource.physical_id)
        for item in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
            s3.delete_object(Bucket=resource.physical_id, Key=item["Key"], VersionId=item["VersionId"])
        s3.delete_bucket(Bucket=resource.physical_id)
