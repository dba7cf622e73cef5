"""Every AWS call the local cloud serves, as IAM would judge it: principal, action, resource ARN, context keys.

The local AWS endpoint (:class:`~.front.AwsFront`) hands each request it forwards to a :class:`CallRecorder`,
which reads the SigV4 credential scope and the operation and turns them into :class:`RecordedCall` rows an
IAM policy evaluator can decide: the ``principal`` (the role whose credentials signed, looked up in the local
cloud's own STS/IAM state by :class:`MotoFacts`), the ``action`` and ``resource`` ARN, the ``context`` keys
AWS would fill, and the calls AWS makes on the caller's behalf (marked ``via``). Why: the least-privilege
check must judge the calls the functions really make, with the keys IAM conditions would see.

Nothing here decides allow or deny (``tests/privilege`` does), and no stored value or body is kept: only
names, ARNs and labels. Which context keys are recorded and how each is filled: docs/design/local-cloud.md,
"Recorded calls".
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

ContextValue = str | tuple[str, ...]
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_JSON_TARGETS = {  # X-Amz-Target prefix -> IAM service prefix
    "secretsmanager": "secretsmanager",
    "AmazonSSM": "ssm",
    "TrentService": "kms",
    "Logs_20140328": "logs",
    "GraniteServiceVersion20100801": "cloudwatch",
}
_SCOPE_SERVICES = {"monitoring": "cloudwatch"}  # SigV4 signing name -> IAM service prefix, where they differ
_CLOUDFRONT_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}/distribution/([^/]+)(/invalidation(?:/([^/]+))?)?/?$")
_LAMBDA_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}/functions/([^/]+)(/.*)?$")
_CBOR_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")
# CreateKey parameters KMS conditions see with their default value when a request leaves them out (KMS developer
# guide, "AWS KMS condition keys": such a condition works even when the parameter does not appear in the request).
_CREATE_KEY_DEFAULTS = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "AWS_KMS"}


@dataclass(frozen=True)
class RecordedCall:
    """One authorisation question: may ``principal`` do ``action`` on ``resource`` in ``context``?"""

    principal: str
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    via: str = ""  # the caller's own action, when AWS makes this call on the caller's behalf
    access_key_id: str = ""
    resource_policy: str = ""  # a KMS key's policy as it stood when the call came (keys made at run time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.principal, "action": self.action, "resource": self.resource,
            "context": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(self.context.items())},
            "via": self.via, "resource_policy": self.resource_policy,
        }


@dataclass(frozen=True)
class SecretFacts:
    """What the recorder needs of one secret: its ARN, its KMS key's ARN and the labels of each version."""

    arn: str
    kms_key_arn: str | None
    labels: Mapping[str, tuple[str, ...]]  # version id -> staging labels

    def version(self, *, version_id: str | None, stage: str | None) -> tuple[str | None, tuple[str, ...]]:
        """The version a read resolves to (AWSCURRENT when neither is given) and its labels."""
        if version_id is not None:
            return version_id, self.labels.get(version_id, ())
        wanted = stage or "AWSCURRENT"
        for vid, labels in self.labels.items():
            if wanted in labels:
                return vid, labels
        return None, ()


class CloudFacts(Protocol):
    """The local cloud's state the recorder consults; :class:`MotoFacts` reads moto's, tests pass a double."""

    account: str
    region: str
    partition: str

    def principal(self, access_key_id: str) -> str | None: ...

    def principal_by_session_token(self, session_token: str) -> str | None: ...

    def secret(self, secret_id: str) -> SecretFacts | None: ...

    def kms_key_arn(self, key_id: str) -> str | None: ...

    def kms_key_tags(self, key_arn: str) -> Mapping[str, str]: ...

    def kms_key_policy(self, key_arn: str) -> str | None: ...


class CallRecorder:
    """Turns each forwarded request into :class:`RecordedCall` rows and keeps them (thread-safe).

    ``principals`` names principals by access key id ahead of ``facts`` (a local stack whose functions
    share one dummy key can name it); an unknown key is recorded as ``unknown:<key id>`` and
    an unsigned request as ``anonymous``, so neither can pass an evaluation by accident.
    """

    def __init__(self, facts: CloudFacts, *, principals: Mapping[str, str] | None = None) -> None:
        self._facts = facts
        self._principals = dict(principals or {})
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        self.unparsed: list[str] = []  # "METHOD path (service)" of requests no rule here understands

    def name_principal(self, access_key_id: str, principal: str) -> None:
        with self._lock:
            self._principals[access_key_id] = principal

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self.unparsed.clear()

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        """The front's hook: record one request (never raises into the front)."""
        try:
            calls = self.parse(method, path, headers, body)
        except Exception as exc:  # a request this module cannot read is noted, not fatal to the call
            calls = []
            with self._lock:
                self.unparsed.append(f"{method} {urlsplit(path).path} ({type(exc).__name__})")
        with self._lock:
            self._calls.extend(calls)

    def record_extension_read(self, session_token: str, secret_id: str, *, version_id: str | None = None,
                              version_stage: str | None = None) -> None:
        """A read through the Parameters and Secrets extension stand-in (plain HTTP on localhost, no SigV4).

        The extension calls ``GetSecretValue`` with the function's own credentials, and a function proves
        it is the caller with ``X-Aws-Parameters-Secrets-Token`` = its ``AWS_SESSION_TOKEN``; the principal
        is the role whose session holds that token.
        """
        principal = self._facts.principal_by_session_token(session_token) if session_token else None
        document: dict[str, Any] = {"SecretId": secret_id}
        if version_id:
            document["VersionId"] = version_id
        if version_stage:
            document["VersionStage"] = version_stage
        parsed = self._secretsmanager_call("secretsmanager:GetSecretValue", "GetSecretValue", document)
        who = principal or ("unknown:session-token" if session_token else "anonymous")
        base: dict[str, ContextValue] = {"aws:SecureTransport": "true"}
        if principal:
            base |= {"aws:PrincipalArn": principal, "aws:PrincipalAccount": principal.split(":")[4]}
        with self._lock:
            self._calls.extend(RecordedCall(who, action, resource, {**base, **context}, via)
                               for action, resource, context, via in parsed if resource)

    # --- parsing ------------------------------------------------------------------------------
    def parse(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> list[RecordedCall]:
        """The calls one request makes (its own and those made on its behalf)."""
        lower = {k.lower(): v for k, v in headers.items()}
        access_key, scope_service = credential_scope(path, lower)
        principal = self._principal(access_key)
        service = _SCOPE_SERVICES.get(scope_service, scope_service)
        split = urlsplit(path)
        target = lower.get("x-amz-target", "")
        parsed: list[tuple[str, str, dict[str, ContextValue], str]]
        policies: dict[str, str] = {}
        if target:
            prefix, _, operation = target.partition(".")
            service = _JSON_TARGETS.get(prefix, service)
            document = json.loads(body or b"{}")
            parsed = self._json_call(service, operation, document if isinstance(document, dict) else {})
        elif (cbor := _CBOR_PATH.match(split.path)) is not None:
            parsed = [(f"{_JSON_TARGETS.get(cbor.group(1), service)}:{cbor.group(2)}", "*", {}, "")]
        elif service == "s3":
            parsed = [self._s3_call(method, split.path, split.query, lower)]
        elif service == "cloudfront":
            parsed = [self._cloudfront_call(method, split.path)]
        elif service == "lambda":
            parsed = [self._lambda_call(method, split.path)]
        elif service in ("sts", "iam") or method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            parsed = [self._query_call(service, form)]
        else:
            raise ValueError(f"no rule for service {service!r}")
        base: dict[str, ContextValue] = {"aws:SecureTransport": "true"}
        if principal.startswith("arn:"):
            base |= {"aws:PrincipalArn": principal, "aws:PrincipalAccount": principal.split(":")[4]}
        if service == "kms":  # a key's policy decides with the caller's IAM policies: keep it as it stands now
            for _, resource, _, _ in parsed:
                if resource.startswith("arn:") and resource not in policies:
                    policies[resource] = self._facts.kms_key_policy(resource) or ""
        return [RecordedCall(principal, action, resource, {**base, **context}, via, access_key, policies.get(resource, ""))
                for action, resource, context, via in parsed]

    def _principal(self, access_key: str) -> str:
        if not access_key:
            return "anonymous"
        known = self._principals.get(access_key) or self._facts.principal(access_key)
        return known or f"unknown:{access_key}"

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        facts = self._facts
        return f"arn:{facts.partition}:{service}:{facts.region if region else ''}:{facts.account}:{resource}"

    def _json_call(self, service: str, operation: str, document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, ContextValue], str]]:
        action = f"{service}:{operation}"
        if service == "secretsmanager":
            return self._secretsmanager_call(action, operation, document)
        if service == "ssm":
            name = str(document.get("Name", ""))
            return [(action, self._arn("ssm", "parameter/" + name.lstrip("/")) if name else "*", {}, "")]
        if service == "kms":
            key = str(document.get("KeyId", ""))
            resource = (self._facts.kms_key_arn(key) or key) if key else "*"
            context: dict[str, ContextValue] = {}
            if resource.startswith("arn:") or operation == "CreateKey":  # ListKeys and the like: no key, no key context
                context["kms:CallerAccount"] = self._facts.account
            if resource.startswith("arn:"):
                for tag, value in self._facts.kms_key_tags(resource).items():
                    context[f"aws:ResourceTag/{tag}"] = value
            requested = {str(t.get("TagKey")): str(t.get("TagValue")) for t in document.get("Tags") or [] if isinstance(t, dict)}
            for tag, value in requested.items():
                context[f"aws:RequestTag/{tag}"] = value
            if requested:
                context["aws:TagKeys"] = tuple(sorted(requested))
            for field_name, key in (("KeySpec", "kms:KeySpec"), ("KeyUsage", "kms:KeyUsage"), ("Origin", "kms:KeyOrigin")):
                if field_name in document:
                    context[key] = str(document[field_name])
                elif operation == "CreateKey":  # KMS authorizes a CreateKey without the parameter with its default
                    context[key] = _CREATE_KEY_DEFAULTS[field_name]
            if "BypassPolicyLockoutSafetyCheck" in document:
                context["kms:BypassPolicyLockoutSafetyCheck"] = "true" if document["BypassPolicyLockoutSafetyCheck"] else "false"
            for name, value in (document.get("EncryptionContext") or {}).items():
                context[f"kms:EncryptionContext:{name}"] = str(value)
            if "SigningAlgorithm" in document:
                context["kms:SigningAlgorithm"] = str(document["SigningAlgorithm"])
            if "MessageType" in document:
                context["kms:MessageType"] = str(document["MessageType"])
            calls = [(action, resource, context, "")]
            if operation == "CreateKey" and requested:  # tagging at creation is authorised as kms:TagResource too
                tagging = {k: v for k, v in context.items() if k.startswith(("aws:RequestTag/", "aws:TagKeys", "kms:CallerAccount"))}
                calls.append(("kms:TagResource", "*", tagging, action))
            return calls
        if service == "logs":
            group = str(document.get("logGroupName", ""))
            stream = document.get("logStreamName")
            if not group:
                return [(action, "*", {}, "")]
            resource = f"log-group:{group}" + (f":log-stream:{stream}" if stream else "")
            return [(action, self._arn("logs", resource), {}, "")]
        if service == "cloudwatch":
            namespace = document.get("Namespace")
            return [(action, "*", {"cloudwatch:namespace": str(namespace)} if namespace else {}, "")]
        raise ValueError(f"no rule for {action}")

    def _secretsmanager_call(self, action: str, operation: str, document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, ContextValue], str]]:
        secret_id = str(document.get("SecretId", document.get("Name", "")))
        facts = self._facts.secret(secret_id) if secret_id else None
        if facts is None:  # no such secret (deleted, or never made): AWS still judges the request as sent
            resource = secret_id if secret_id.startswith("arn:") else (self._arn("secretsmanager", f"secret:{secret_id}") if secret_id else "*")
            sent: dict[str, ContextValue] = {}
            if operation == "GetSecretValue" and "VersionStage" in document:
                sent["secretsmanager:VersionStage"] = (str(document["VersionStage"]),)
            if operation == "GetSecretValue" and "VersionId" in document:
                sent["secretsmanager:VersionId"] = str(document["VersionId"])
            return [(action, resource, sent, "")]
        context: dict[str, ContextValue] = {}
        calls: list[tuple[str, str, dict[str, ContextValue], str]] = []
        if operation == "GetSecretValue":
            version_id, labels = facts.version(version_id=document.get("VersionId"), stage=document.get("VersionStage"))
            context["secretsmanager:VersionStage"] = tuple(sorted(labels))
            if version_id is not None:
                context["secretsmanager:VersionId"] = version_id
            calls.append(self._on_behalf("kms:Decrypt", facts, action, version_id))
        elif operation == "PutSecretValue":
            calls.append(self._on_behalf("kms:GenerateDataKey", facts, action, document.get("ClientRequestToken")))
        elif operation == "UpdateSecretVersionStage" and "VersionStage" in document:
            context["secretsmanager:VersionStage"] = str(document["VersionStage"])
        return [(action, facts.arn, context, ""), *[c for c in calls if c[1]]]

    def _on_behalf(self, action: str, facts: SecretFacts, via: str, version_id: str | None) -> tuple[str, str, dict[str, ContextValue], str]:
        """Secrets Manager's own KMS call for the caller (with the caller's identity), as AWS documents it."""
        if facts.kms_key_arn is None:  # the AWS managed key: its policy is AWS's, nothing of ours to judge
            return (action, "", {}, via)
        context: dict[str, ContextValue] = {
            "kms:ViaService": f"secretsmanager.{self._facts.region}.amazonaws.com",
            "kms:CallerAccount": self._facts.account,
            "kms:EncryptionContext:SecretARN": facts.arn,
        }
        if version_id:
            context["kms:EncryptionContext:SecretVersionId"] = str(version_id)
        return (action, facts.kms_key_arn, context, via)

    def _s3_call(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> tuple[str, str, dict[str, ContextValue], str]:
        host = headers.get("host", "").split(":")[0]
        parts = unquote(path).lstrip("/")
        if ".s3." in host or host.endswith(".s3.amazonaws.com"):  # virtual-hosted style
            bucket, key = host.split(".s3", 1)[0], parts
        else:
            bucket, _, key = parts.partition("/")
        subresources = set(parse_qs(query, keep_blank_values=True))
        if not bucket:
            return ("s3:ListAllMyBuckets", "*", {}, "")
        if key:
            resource = f"arn:{self._facts.partition}:s3:::{bucket}/{key}"
            versioned = "versionId" in subresources
            action = {
                "GET": "s3:GetObjectVersion" if versioned else "s3:GetObject",
                "HEAD": "s3:GetObjectVersion" if versioned else "s3:GetObject",
                "PUT": "s3:PutObjectTagging" if "tagging" in subresources else ("s3:PutObjectAcl" if "acl" in subresources else "s3:PutObject"),
                "DELETE": "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject",
                "POST": "s3:PutObject",
            }.get(method)
            if action is None:
                raise ValueError(f"no rule for S3 {method} on an object")
            return (action, resource, {}, "")
        resource = f"arn:{self._facts.partition}:s3:::{bucket}"
        bucket_actions = {
            ("GET", "versions"): "s3:ListBucketVersions", ("GET", "versioning"): "s3:GetBucketVersioning",
            ("PUT", "versioning"): "s3:PutBucketVersioning", ("GET", "policy"): "s3:GetBucketPolicy",
            ("PUT", "policy"): "s3:PutBucketPolicy", ("PUT", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
            ("GET", "location"): "s3:GetBucketLocation", ("POST", "delete"): "s3:DeleteObject",
        }
        for sub in sorted(subresources):
            if (method, sub) in bucket_actions:
                return (bucket_actions[(method, sub)], resource, {}, "")
        action = {"GET": "s3:ListBucket", "HEAD": "s3:ListBucket", "PUT": "s3:CreateBucket", "DELETE": "s3:DeleteBucket"}.get(method)
        if action is None:
            raise ValueError(f"no rule for S3 {method} on a bucket")
        return (action, resource, {}, "")

    def _cloudfront_call(self, method: str, path: str) -> tuple[str, str, dict[str, ContextValue], str]:
        match = _CLOUDFRONT_PATH.match(path)
        if match is None:
            if method == "POST" and path.rstrip("/").endswith("/distribution"):
                return ("cloudfront:CreateDistribution", "*", {}, "")
            raise ValueError("no rule for this CloudFront path")
        resource = self._arn("cloudfront", f"distribution/{match.group(1)}", region=False)
        if match.group(2):
            action = "cloudfront:CreateInvalidation" if method == "POST" else (
                "cloudfront:GetInvalidation" if match.group(3) else "cloudfront:ListInvalidations")
        else:
            action = {"GET": "cloudfront:GetDistribution", "DELETE": "cloudfront:DeleteDistribution"}.get(method, "cloudfront:UpdateDistribution")
        return (action, resource, {}, "")

    def _lambda_call(self, method: str, path: str) -> tuple[str, str, dict[str, ContextValue], str]:
        match = _LAMBDA_PATH.match(path)
        if match is None:
            raise ValueError("no rule for this Lambda path")
        name = unquote(match.group(1))
        resource = name if name.startswith("arn:") else self._arn("lambda", f"function:{name}")
        rest = match.group(2) or ""
        action = "lambda:InvokeFunction" if rest.startswith("/invocations") else ("lambda:GetFunction" if method == "GET" else "lambda:UpdateFunctionConfiguration")
        return (action, resource, {}, "")

    def _query_call(self, service: str, form: Mapping[str, str]) -> tuple[str, str, dict[str, ContextValue], str]:
        operation = form.get("Action", "")
        if not operation:
            raise ValueError(f"no Action in a {service} query request")
        if service == "sts" and operation.startswith("AssumeRole"):
            return (f"sts:{operation}", form.get("RoleArn", "*"), {}, "")
        return (f"{service}:{operation}", "*", {}, "")


def credential_scope(path: str, headers: Mapping[str, str]) -> tuple[str, str]:
    """(access key id, signing service) of a SigV4 request (header or presigned query); ("", "") when unsigned."""
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    match = _CREDENTIAL.search(authorization)
    if match is None:  # presigned query string?
        credential = parse_qs(urlsplit(path).query).get("X-Amz-Credential", [""])[0]
        match = _CREDENTIAL.search("Credential=" + credential) if credential else None
    return (match.group(1), match.group(4)) if match else ("", "")


class MotoFacts:
    """:class:`CloudFacts` read from the moto backends of this process (``ThreadedMotoServer`` runs in it).

    A session of an assumed role resolves to the role's ARN, an IAM user's key to the user's ARN.
    """

    def __init__(self, *, account: str = "123456789012", region: str = "us-east-1", partition: str = "aws") -> None:
        self.account, self.region, self.partition = account, region, partition

    def principal(self, access_key_id: str) -> str | None:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        assumed = sts_backends[self.account][self.partition].get_assumed_role_from_access_key(access_key_id)
        if assumed is not None:
            return str(assumed.role_arn)
        iam = iam_backends[self.account][self.partition]
        key = iam.access_keys.get(access_key_id)
        if key is not None and getattr(key, "role_arn", None):
            return str(key.role_arn)
        for user in list(iam.users.values()):
            if any(k.access_key_id == access_key_id for k in user.access_keys):
                return str(user.arn)
        return None

    def principal_by_session_token(self, session_token: str) -> str | None:
        from moto.sts.models import sts_backends

        for assumed in list(sts_backends[self.account][self.partition].assumed_roles):
            if assumed.session_token == session_token:
                return str(assumed.role_arn)
        return None

    def secret(self, secret_id: str) -> SecretFacts | None:
        from moto.secretsmanager.models import secretsmanager_backends

        store = secretsmanager_backends[self.account][self.region].secrets
        secret = store.get(secret_id)
        if secret is None:
            return None
        versions: Mapping[str, Mapping[str, Any]] = getattr(secret, "versions", {})
        labels = {vid: tuple(v.get("version_stages") or ()) for vid, v in list(versions.items())}
        key = getattr(secret, "kms_key_id", None)
        return SecretFacts(str(secret.arn), self.kms_key_arn(key) if key else None, labels)

    def kms_key_tags(self, key_arn: str) -> Mapping[str, str]:
        from moto.kms.models import kms_backends

        backend = kms_backends[self.account][self.region]
        try:
            tags = backend.list_resource_tags(backend.any_id_to_key_id(key_arn)).get("Tags", [])
        except Exception:
            return {}
        return {str(t["TagKey"]): str(t["TagValue"]) for t in tags}

    def kms_key_policy(self, key_arn: str) -> str | None:
        from moto.kms.models import kms_backends

        backend = kms_backends[self.account][self.region]
        try:
            policy = backend.keys[backend.any_id_to_key_id(key_arn)].policy
        except Exception:
            return None
        return policy if isinstance(policy, str) else json.dumps(policy)

    def kms_key_arn(self, key_id: str) -> str | None:
        from moto.kms.models import kms_backends

        backend = kms_backends[self.account][self.region]
        try:
            resolved = backend.any_id_to_key_id(key_id)
            return str(backend.keys[resolved].arn)
        except Exception:
            return None


def attach(front: Any, recorder: Callable[[str, str, Mapping[str, str], bytes], None]) -> None:
    """Give ``front`` (an :class:`~.front.AwsFront`) the recorder as its request hook."""
    front.recorder = recorder


def calls_as_json(calls: Sequence[RecordedCall]) -> str:
    """The recorded calls, one JSON object per line (no values, only names, ARNs and labels)."""
    return "".join(json.dumps(call.to_dict(), sort_keys=True) + "\n" for call in calls)
