"""The template's policies as AWS would hold them after a deployment: intrinsics resolved to ARNs.

Reads the translated template (plain CloudFormation: SAM's generated roles included; ``make
check-template`` writes it to ``.aws-sam/checks/template.translated.json``) and resolves ``Ref``,
``Fn::GetAtt``, ``Fn::Sub``, ``Fn::If`` (with the template's own conditions), ``Fn::Join``,
``Fn::Select`` and ``Fn::Split`` and ``AWS::NoValue`` with a :class:`Deployment`: the parameters and a
logical id -> physical id/ARN mapping (the local stack's, or :meth:`Deployment.synthetic` for one
made up the way CloudFormation names things).

What comes out, per the IAM evaluation: each role's identity policies (inline, plus the AWS managed
policies SAM attaches, written out below), the two secrets' resource policies, the KMS key policy and
the bucket policy, and which of them governs a given resource ARN.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = ROOT / ".aws-sam" / "checks" / "template.translated.json"

# The AWS managed policies SAM attaches to the function roles, as AWS publishes them (version v1 / v4).
MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}],
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": [
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries"], "Resource": "*"}],
    },
}


@dataclass(frozen=True)
class Physical:
    """A resource as deployed: what ``Ref`` returns and its attributes (``Arn``, ...)."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    stack: str
    account: str
    region: str
    resources: Mapping[str, Physical]
    parameters: Mapping[str, str] = field(default_factory=dict)
    partition: str = "aws"

    @classmethod
    def synthetic(cls, template: Mapping[str, Any], *, stack: str = "jwks-rotator", account: str = "123456789012",
                  region: str = "us-east-1", parameters: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Physical] | None = None, suffix: str = "1A2B3C4D5E6F") -> Deployment:
        """Physical ids made up as CloudFormation makes them (``STACK-Logical-SUFFIX``), for a template not deployed.

        Stacks of the same name in several regions each get their own ``suffix`` (IAM roles and bucket names are global).
        """
        resources: dict[str, Physical] = {}
        for logical, resource in template["Resources"].items():
            kind, props = resource["Type"], resource.get("Properties", {})
            name = f"{stack}-{logical}-{suffix}"
            if kind == "AWS::IAM::Role":
                resources[logical] = Physical(name, {"Arn": f"arn:aws:iam::{account}:role/{name}"})
            elif kind == "AWS::SecretsManager::Secret":
                secret_name = _sub_plain(props.get("Name"), stack) or name
                arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_name}-AbC123"
                resources[logical] = Physical(arn, {"Id": arn})
            elif kind == "AWS::KMS::Key":
                key_id = f"{zlib.crc32(logical.encode()):08x}-1111-2222-3333-444455556666"
                resources[logical] = Physical(key_id, {"Arn": f"arn:aws:kms:{region}:{account}:key/{key_id}", "KeyId": key_id})
            elif kind == "AWS::S3::Bucket":
                bucket = name.lower()
                resources[logical] = Physical(bucket, {"Arn": f"arn:aws:s3:::{bucket}", "RegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com"})
            elif kind == "AWS::CloudFront::Distribution":
                resources[logical] = Physical("E1A2B3C4D5E6F7", {"DomainName": "d111111abcdef8.cloudfront.net", "Id": "E1A2B3C4D5E6F7"})
            elif kind == "AWS::Lambda::Function":
                resources[logical] = Physical(name, {"Arn": f"arn:aws:lambda:{region}:{account}:function:{name}"})
            else:
                resources[logical] = Physical(name, {"Arn": f"arn:aws:unknown:{region}:{account}:{logical}"})
        resources.update(overrides or {})
        return cls(stack, account, region, resources, dict(parameters or {}))

    def role_arn(self, logical: str) -> str:
        return self.resources[logical].attributes["Arn"]

    def session_arn(self, logical: str, session: str = "session") -> str:
        """The principal ARN a session of the role presents (``aws:PrincipalArn`` is the role's)."""
        return f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.resources[logical].ref}/{session}"


def _sub_plain(value: Any, stack: str) -> str | None:
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"].replace("${AWS::StackName}", stack)
    return value if isinstance(value, str) else None


_NO_VALUE = object()


class Resolver:
    """Resolves the intrinsic functions of one template for one :class:`Deployment`."""

    def __init__(self, template: Mapping[str, Any], deployment: Deployment) -> None:
        self.template = template
        self.deployment = deployment
        defaults = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
        self.parameters = {**defaults, **deployment.parameters}
        self._conditions: dict[str, bool] = {}

    def pseudo(self, name: str) -> str | None:
        d = self.deployment
        return {"AWS::AccountId": d.account, "AWS::Region": d.region, "AWS::Partition": d.partition,
                "AWS::StackName": d.stack, "AWS::URLSuffix": "amazonaws.com"}.get(name)

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        pseudo = self.pseudo(name)
        if pseudo is not None:
            return pseudo
        if name in self.parameters:
            return self.parameters[name]
        return self.deployment.resources[name].ref

    def get_att(self, logical: str, attribute: str) -> str:
        return self.deployment.resources[logical].attributes[attribute]

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.resolve(v) for k, v in arg[1].items()})

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return self.get_att(logical, attribute)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)


@dataclass(frozen=True)
class Policies:
    """The deployed policies: identity policies by role ARN, resource policies by the resource ARN they govern."""

    identity: Mapping[str, list[dict[str, Any]]]  # role ARN -> [{"name", "policy"}]
    secrets: Mapping[str, dict[str, Any]]  # secret ARN -> resource policy
    keys: Mapping[str, dict[str, Any]]  # key ARN -> key policy
    buckets: Mapping[str, dict[str, Any]]  # bucket name -> bucket policy

    def resource_policy(self, resource: str) -> dict[str, Any] | None:
        """The resource-based policy AWS consults for ``resource`` (a secret, a KMS key, a bucket or object)."""
        if resource in self.secrets:
            return self.secrets[resource]
        if resource in self.keys:
            return self.keys[resource]
        if resource.startswith("arn:aws:s3:::"):
            bucket = resource[len("arn:aws:s3:::"):].split("/", 1)[0]
            return self.buckets.get(bucket)
        return None


def merged(*each: Policies) -> Policies:
    """The policies of several stacks of one account (a stack per region) as the account holds them together."""
    identity: dict[str, list[dict[str, Any]]] = {}
    secrets: dict[str, dict[str, Any]] = {}
    keys: dict[str, dict[str, Any]] = {}
    buckets: dict[str, dict[str, Any]] = {}
    for policies in each:
        identity.update(policies.identity)
        secrets.update(policies.secrets)
        keys.update(policies.keys)
        buckets.update(policies.buckets)
    return Policies(identity, secrets, keys, buckets)


def with_replicas(policies: Policies, regions: Iterable[str]) -> Policies:
    """``policies`` plus each secret's replicas in ``regions``: Secrets Manager replicates a secret's resource policy with
    it (AWS Secrets Manager user guide, "Replicate secrets across Regions"), and a replica's ARN is its primary's with
    the region changed."""
    secrets = dict(policies.secrets)
    for arn, document in policies.secrets.items():
        parts = arn.split(":")
        for region in regions:
            secrets.setdefault(":".join([*parts[:3], region, *parts[4:]]), document)
    return Policies(policies.identity, secrets, policies.keys, policies.buckets)


def load_template(path: Path = TRANSLATED) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make check-privilege` (it translates template.yaml first)")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def extract(template: Mapping[str, Any], deployment: Deployment) -> Policies:
    """Every policy of the translated template, resolved for ``deployment`` (resources under a false Condition left out)."""
    resolver = Resolver(template, deployment)
    identity: dict[str, list[dict[str, Any]]] = {}
    secrets: dict[str, dict[str, Any]] = {}
    keys: dict[str, dict[str, Any]] = {}
    buckets: dict[str, dict[str, Any]] = {}
    for logical, resource in template["Resources"].items():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            documents = [{"name": p["PolicyName"], "policy": resolver.resolve(p["PolicyDocument"])} for p in props.get("Policies", [])]
            for arn in resolver.resolve(props.get("ManagedPolicyArns", [])):
                if arn not in MANAGED_POLICIES:
                    raise KeyError(f"{logical}: managed policy {arn} is not written out in {__name__}.MANAGED_POLICIES")
                documents.append({"name": arn.rsplit("/", 1)[1], "policy": MANAGED_POLICIES[arn]})
            identity[deployment.role_arn(logical)] = documents
        elif kind == "AWS::SecretsManager::ResourcePolicy":
            secrets[str(resolver.resolve(props["SecretId"]))] = resolver.resolve(props["ResourcePolicy"])
        elif kind == "AWS::KMS::Key":
            keys[deployment.resources[logical].attributes["Arn"]] = resolver.resolve(props["KeyPolicy"])
        elif kind == "AWS::S3::BucketPolicy":
            buckets[str(resolver.resolve(props["Bucket"]))] = resolver.resolve(props["PolicyDocument"])
    return Policies(identity, secrets, keys, buckets)
