"""Recordings a local stack wrote (``LocalStack(record_calls=DIR)``, ``JWKS_ROTATOR_RECORD_CALLS=DIR``), read back for the matrix.

Each file is one stack's run (:mod:`jwks_rotator_local.call_recording`): its functions' calls and the deployment
they ran against: the translated template as deployed, its parameters, each logical id's physical id and ARN,
the functions' role ARNs. :func:`load_recorded` turns a file into a :class:`RecordedRun`: a
:class:`~tests.privilege.scenario.Recording` whose :class:`~tests.privilege.policies.Deployment` resolves that
stack's own policies, and the template to resolve them from. Runs whose deployment is the same (same template,
parameters and physical ids) are merged by :func:`merge_runs`, so a call made in both is decided once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwks_rotator_local.call_record import RecordedCall
from tests.privilege.policies import Deployment, Physical
from tests.privilege.scenario import Recording

FORMAT = "jwks-rotator-recorded-calls/1"
_ATTRIBUTES_BY_TYPE = {  # the GetAtt attributes policies may name besides Arn, from the physical id
    "AWS::SecretsManager::Secret": ("Id",),
    "AWS::KMS::Key": ("KeyId",),
    "AWS::CloudFront::Distribution": ("Id",),
    "AWS::SQS::Queue": ("QueueUrl",),
}


@dataclass(frozen=True)
class RecordedRun:
    sources: tuple[str, ...]  # the files merged into this run
    template: dict[str, Any]
    recording: Recording
    requests: int  # the functions' requests (before identical calls were merged)
    left_out: int  # requests through the front with other credentials (the harness): not judged


def deployment_of(described: Mapping[str, Any]) -> Deployment:
    """The :class:`Deployment` a ``DeployedTemplate.as_dict()`` describes (physical ids, ARNs, parameters)."""
    pseudo = described["pseudo"]
    region = pseudo["AWS::Region"]
    resources: dict[str, Physical] = {}
    for logical, resource in described["resources"].items():
        physical, arn, kind = resource["physical_id"], resource.get("arn"), resource["type"]
        attributes = dict.fromkeys(_ATTRIBUTES_BY_TYPE.get(kind, ()), physical)
        if arn:
            attributes["Arn"] = arn
        if kind == "AWS::SQS::Queue":
            attributes["QueueName"] = physical.rsplit("/", 1)[-1]
        if kind == "AWS::S3::Bucket":
            attributes["RegionalDomainName"] = f"{physical}.s3.{region}.amazonaws.com"
        if kind == "AWS::CloudFront::Distribution" and "DistributionDomainName" in described.get("outputs", {}):
            attributes["DomainName"] = described["outputs"]["DistributionDomainName"]
        resources[logical] = Physical(physical, attributes)
    return Deployment(described["stack_name"], pseudo["AWS::AccountId"], region, resources, dict(described.get("parameters", {})),
                      pseudo.get("AWS::Partition", "aws"))


def _call(row: Mapping[str, Any]) -> RecordedCall:
    context = {k: tuple(v) if isinstance(v, list) else v for k, v in row["context"].items()}
    return RecordedCall(row["principal"], row["action"], row["resource"], context, row.get("via", ""),
                        resource_policy=row.get("resource_policy", ""))


def load_recorded(path: Path) -> RecordedRun:
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: not a recording of format {FORMAT}")
    described = document["deployment"]
    recording = Recording([_call(row) for row in document["calls"]], list(document.get("unparsed", [])), deployment_of(described))
    return RecordedRun((path.name,), described["template"], recording, int(document.get("function_requests", 0)),
                       int(document.get("left_out", 0)))


def recorded_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


def _fingerprint(run: RecordedRun) -> str:
    d = run.recording.deployment
    described = json.dumps([run.template, d.stack, d.account, d.region, d.partition, sorted(d.parameters.items()),
                            sorted((k, p.ref, sorted(p.attributes.items())) for k, p in d.resources.items())], sort_keys=True)
    return hashlib.sha256(described.encode()).hexdigest()


def merge_runs(runs: Iterable[RecordedRun]) -> list[RecordedRun]:
    """Runs against the same deployment as one (their calls together; identical calls then decided once)."""
    merged: dict[str, RecordedRun] = {}
    for run in runs:
        key = _fingerprint(run)
        if key not in merged:
            merged[key] = run
            continue
        before = merged[key]
        recording = Recording(before.recording.calls + run.recording.calls, before.recording.unparsed + run.recording.unparsed,
                              before.recording.deployment)
        merged[key] = RecordedRun(before.sources + run.sources, before.template, recording, before.requests + run.requests,
                                  before.left_out + run.left_out)
    return list(merged.values())


def load_directory(directory: Path) -> list[RecordedRun]:
    return merge_runs(load_recorded(path) for path in recorded_files(directory))


def describe_sources(sources: Sequence[str]) -> str:
    return sources[0] if len(sources) == 1 else f"{sources[0]} (+{len(sources) - 1} with the same deployment)"
