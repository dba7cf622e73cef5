"""CloudFormation resource types moto 5.2.5 lacks, registered with moto's CloudFormation in this process.

moto's ``create_stack`` skips a type it has no model for, and a ``Ref``/``GetAtt`` on a skipped resource fails the
stack. The subclasses of :class:`moto.core.common_models.CloudFormationModel` here (made visible by
:func:`register`) create the real moto resource where moto has the service's API: Secrets Manager secrets and
resource policies, CloudFront origin access control and distribution, CloudWatch alarms, Scheduler schedules,
Lambda event invoke config, SNS topic policies. ``AWS::S3::BucketPolicy`` is kept out of moto (it ignores policy
conditions, so the TLS-only Deny would block every call) and stored here for the IAM evaluator
(:func:`resource_policies`). Stack updates of these types are not emulated.

The table of every type and what the local cloud does with it: Design: docs/design/local-cloud.md.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import Stack as MotoStack
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.kms import models as kms_models

PolicyKey = tuple[str, str, str, str]
"""(account, region, resource type, physical id of the resource the policy is on)."""

_policies: dict[PolicyKey, dict[str, Any]] = {}
_policies_lock = threading.Lock()


def resource_policies() -> dict[PolicyKey, dict[str, Any]]:
    """Resource policies the emulations kept out of moto (or moto never evaluates), resolved: a copy."""
    with _policies_lock:
        return {key: json.loads(json.dumps(document)) for key, document in _policies.items()}


def without_no_value(document: Any) -> Any:
    """``document`` as CloudFormation resolves it: ``AWS::NoValue`` (moto leaves ``None``) removed from lists and maps."""
    if isinstance(document, dict):
        return {key: without_no_value(value) for key, value in document.items() if value is not None}
    if isinstance(document, list):
        return [without_no_value(item) for item in document if item is not None]
    return document


def _store_policy(key: PolicyKey, document: Any) -> None:
    with _policies_lock:
        _policies[key] = json.loads(json.dumps(without_no_value(document)))


def _drop_policy(key: PolicyKey) -> None:
    with _policies_lock:
        _policies.pop(key, None)


def _props(cloudformation_json: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = cloudformation_json.get("Properties") or {}
    return props


def _quantity(items: list[Any] | None) -> dict[str, Any]:
    items = list(items or [])
    return {"Quantity": len(items), "Items": items} if items else {"Quantity": 0}


class _Emulated:
    """Common parts (a mixin: moto finds only direct subclasses of CloudFormationModel): ``Ref`` is the physical id."""

    ATTRIBUTES: tuple[str, ...] = ()

    def __init__(self, physical_id: str, attributes: dict[str, str] | None = None) -> None:
        self._physical_id = physical_id
        self.attributes = attributes or {}

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    @property
    def physical_resource_id(self) -> str:
        return self._physical_id

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name not in self.attributes:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            raise UnformattedGetAttTemplateException()
        return self.attributes[attribute_name]

    def is_created(self) -> bool:
        return True

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        """Nothing to undo unless a subclass says so."""


class SecretsManagerSecret(_Emulated, CloudFormationModel):
    ATTRIBUTES = ("Id",)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SecretsManagerSecret:
        from moto.secretsmanager.models import secretsmanager_backends

        props = _props(cloudformation_json)
        if "GenerateSecretString" in props:
            raise ValueError("AWS::SecretsManager::Secret: GenerateSecretString is not emulated locally; give SecretString")
        backend = secretsmanager_backends[account_id][region_name]
        replicas = [dict(r) for r in without_no_value(props.get("ReplicaRegions") or [])]
        _check_replica_keys(account_id, replicas)
        answer = json.loads(
            backend.create_secret(
                name=props.get("Name") or resource_name,
                secret_string=props.get("SecretString"),
                secret_binary=None,
                description=props.get("Description"),
                tags=props.get("Tags"),
                kms_key_id=props.get("KmsKeyId"),
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
        )
        arn = str(answer["ARN"])
        if replicas:  # as ReplicateSecretToRegions would (moto replicates at once: no lag)
            backend.replicate_secret_to_regions(arn, [{"Region": r["Region"]} for r in replicas], force_overwrite=False)
            created: Any = backend.describe_secret(arn)  # the primary (a FakeSecret): only it has replicas
            for replica, given in zip(created.replicas, replicas, strict=True):
                if replica.status != "InSync":
                    raise _refused(f"AWS::SecretsManager::Secret: replica in {replica.region}: {replica.message}")
                replica.config["KmsKeyId"] = given.get("KmsKeyId") or replica.config["KmsKeyId"]
        return cls(arn, {"Id": arn})

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[account_id][region_name]
        with contextlib.suppress(JsonRESTError):  # gone already (a reset): nothing to delete
            remove_replicas(backend, resource_name)
            backend.delete_secret(resource_name, recovery_window_in_days=None, force_delete_without_recovery=True)


def _refused(message: str) -> Exception:
    """An error moto's CloudFormation answers as a ValidationError (HTTP 400), so create_stack fails naming it."""
    from moto.cloudformation.exceptions import ValidationError

    return ValidationError(message=message)


def _check_replica_keys(account_id: str, replicas: list[dict[str, Any]]) -> None:
    """Each replica's KMS key (an alias, as the template names it) must exist in the replica's region, as AWS needs to
    encrypt the replica there: the secondary regions' stacks are deployed before the primary's (docs/regions.md)."""
    for replica in replicas:
        key, region = str(replica.get("KmsKeyId") or ""), str(replica["Region"])
        if not key.startswith("alias/"):
            continue
        if not kms_models.kms_backends[account_id][region].alias_exists(key):
            raise _refused(f"AWS::SecretsManager::Secret: replica in {region}: KMS key {key} not found there "
                             "(deploy that region's stack first: it creates the alias)")


def remove_replicas(backend: Any, secret_id: str) -> None:
    """Take a secret's replicas out of replication (AWS refuses to delete a secret that still has replicas)."""
    secret: Any = backend.describe_secret(secret_id)
    regions = [replica.region for replica in getattr(secret, "replicas", [])]
    if regions:
        backend.remove_regions_from_replication(secret_id, regions)


class S3BucketPolicy(_Emulated, CloudFormationModel):
    """Stored for the evaluator, never put on moto's bucket (see the module docstring)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> S3BucketPolicy:
        props = _props(cloudformation_json)
        bucket = str(props["Bucket"])
        _store_policy((account_id, region_name, "AWS::S3::Bucket", bucket), props["PolicyDocument"])
        return cls(bucket)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        _drop_policy((account_id, region_name, "AWS::S3::Bucket", resource_name))


class SecretsManagerResourcePolicy(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::ResourcePolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SecretsManagerResourcePolicy:
        from moto.secretsmanager.models import secretsmanager_backends

        props = _props(cloudformation_json)
        secret_arn = str(props["SecretId"])
        document = without_no_value(props["ResourcePolicy"])
        secretsmanager_backends[account_id][region_name].put_resource_policy(secret_arn, json.dumps(document))
        _store_policy((account_id, region_name, "AWS::SecretsManager::Secret", secret_arn), document)
        return cls(secret_arn)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        _drop_policy((account_id, region_name, "AWS::SecretsManager::Secret", resource_name))


class SnsTopicPolicy(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::TopicPolicy"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SnsTopicPolicy:
        from moto.sns.models import sns_backends

        props = _props(cloudformation_json)
        backend = sns_backends[account_id][region_name]
        for topic_arn in props.get("Topics") or []:
            backend.set_topic_attribute(topic_arn, "Policy", json.dumps(props["PolicyDocument"]))
            _store_policy((account_id, region_name, "AWS::SNS::Topic", str(topic_arn)), props["PolicyDocument"])
        return cls(resource_name)


class CloudFrontOriginAccessControl(_Emulated, CloudFormationModel):
    ATTRIBUTES = ("Id",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFront::OriginAccessControl"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> CloudFrontOriginAccessControl:
        from moto.cloudfront.models import cloudfront_backends

        config = dict(_props(cloudformation_json)["OriginAccessControlConfig"])
        control = cloudfront_backends[account_id]["global"].create_origin_access_control(config)
        return cls(control.id, {"Id": control.id})

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.cloudfront.models import cloudfront_backends

        cloudfront_backends[account_id]["global"].origin_access_controls.pop(resource_name, None)


def distribution_config(config: dict[str, Any], caller_reference: str) -> dict[str, Any]:
    """A CloudFormation ``DistributionConfig`` in the API's shape (``Quantity``/``Items``), as moto's backend takes it."""
    api: dict[str, Any] = {
        key: value
        for key, value in config.items()
        if key in ("Comment", "Enabled", "PriceClass", "HttpVersion", "ViewerCertificate", "WebACLId", "DefaultRootObject")
    }
    api["CallerReference"] = caller_reference
    api["Comment"] = api.get("Comment", "")
    api["IsIPV6Enabled"] = config.get("IPV6Enabled", True)
    if config.get("Aliases"):
        api["Aliases"] = _quantity(config["Aliases"])
    api["Origins"] = _quantity([dict(origin) for origin in config.get("Origins", [])])
    if config.get("OriginGroups"):  # CloudFormation takes them in the API's shape already (Quantity/Items)
        api["OriginGroups"] = json.loads(json.dumps(config["OriginGroups"]))
    behaviour = dict(config["DefaultCacheBehavior"])
    allowed = behaviour.pop("AllowedMethods", ["GET", "HEAD"])
    cached = behaviour.pop("CachedMethods", ["GET", "HEAD"])
    behaviour["AllowedMethods"] = {**_quantity(allowed), "CachedMethods": _quantity(cached)}
    api["DefaultCacheBehavior"] = behaviour
    return api


class CloudFrontDistribution(_Emulated, CloudFormationModel):
    ATTRIBUTES = ("Id", "DomainName")

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFront::Distribution"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> CloudFrontDistribution:
        from moto.cloudfront.models import cloudfront_backends

        config = distribution_config(without_no_value(_props(cloudformation_json)["DistributionConfig"]), caller_reference=resource_name)
        # moto checks the default behaviour's target against the origins only: an origin group's id (CloudFront takes
        # it) is given after creation; until then the behaviour names the group's first member.
        target = config["DefaultCacheBehavior"]["TargetOriginId"]
        groups = {g["Id"]: g for g in (config.get("OriginGroups") or {}).get("Items", [])}
        if target in groups:
            members = [m["OriginId"] for m in groups[target]["Members"]["Items"]]
            unknown = set(members) - {o["Id"] for o in config["Origins"].get("Items", [])}
            if unknown:
                raise _refused(f"AWS::CloudFront::Distribution: origin group {target} names origins it lacks: {sorted(unknown)}")
            config["DefaultCacheBehavior"]["TargetOriginId"] = members[0]
        distribution, _, _ = cloudfront_backends[account_id]["global"].create_distribution(config, [])
        stored: Any = distribution.distribution_config  # moto sets its fields from the config's keys
        stored.DefaultCacheBehavior.target_origin_id = target
        return cls(distribution.distribution_id, {"Id": distribution.distribution_id, "DomainName": distribution.domain_name})

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.cloudfront.models import cloudfront_backends

        cloudfront_backends[account_id]["global"].distributions.pop(resource_name, None)


class CloudWatchAlarm(_Emulated, CloudFormationModel):
    ATTRIBUTES = ("Arn",)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> CloudWatchAlarm:
        from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends

        props = _props(cloudformation_json)
        queries = None
        if props.get("Metrics"):
            queries = []
            for query in props["Metrics"]:
                stat = None
                if "MetricStat" in query:
                    given = query["MetricStat"]
                    metric = given["Metric"]
                    dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
                    stat = MetricStat(Metric(metric["MetricName"], metric.get("Namespace"), dimensions), given.get("Period"), given.get("Stat"), given.get("Unit"))
                queries.append(MetricDataQuery(query["Id"], query.get("Label"), query.get("Period"), query.get("ReturnData"), query.get("Expression"), stat))
        name = props.get("AlarmName") or resource_name
        arguments: dict[str, Any] = {
            "name": name,
            "namespace": props.get("Namespace"),
            "metric_name": props.get("MetricName"),
            "comparison_operator": props["ComparisonOperator"],
            "evaluation_periods": props["EvaluationPeriods"],
            "period": props.get("Period"),
            "threshold": float(props["Threshold"]),
            "statistic": props.get("Statistic"),
            "description": props.get("AlarmDescription"),
            "dimensions": [{"Name": d["Name"], "Value": d["Value"]} for d in props.get("Dimensions", [])],
            "alarm_actions": props.get("AlarmActions") or [],
            "metric_data_queries": queries,
            "datapoints_to_alarm": props.get("DatapointsToAlarm"),
            "ok_actions": props.get("OKActions") or [],
            "treat_missing_data": props.get("TreatMissingData"),
        }
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(**arguments)
        return cls(name, {"Arn": alarm.alarm_arn})

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])


class SchedulerSchedule(_Emulated, CloudFormationModel):
    ATTRIBUTES = ("Arn",)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::Schedule"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SchedulerSchedule:
        from moto.scheduler.models import scheduler_backends

        props = _props(cloudformation_json)
        name = props.get("Name") or resource_name
        arguments: dict[str, Any] = {
            "description": props.get("Description"),
            "end_date": props.get("EndDate"),
            "flexible_time_window": props["FlexibleTimeWindow"],
            "group_name": props.get("GroupName"),
            "kms_key_arn": props.get("KmsKeyArn"),
            "name": name,
            "schedule_expression": props["ScheduleExpression"],
            "schedule_expression_timezone": props.get("ScheduleExpressionTimezone"),
            "start_date": props.get("StartDate"),
            "state": props.get("State") or "ENABLED",
            "target": props["Target"],
            "action_after_completion": None,
        }
        schedule = scheduler_backends[account_id][region_name].create_schedule(**arguments)
        return cls(name, {"Arn": schedule.arn})

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.scheduler.models import scheduler_backends

        group = _props(cloudformation_json).get("GroupName")
        with contextlib.suppress(JsonRESTError):  # gone already (a reset)
            scheduler_backends[account_id][region_name].delete_schedule(group, resource_name)


class LambdaEventInvokeConfig(_Emulated, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> LambdaEventInvokeConfig:
        from moto.awslambda.models import lambda_backends

        props = _props(cloudformation_json)
        config: dict[str, Any] = {key: props[key] for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig") if key in props}
        function = str(props["FunctionName"])
        lambda_backends[account_id][region_name].put_function_event_invoke_config(function, config)
        return cls(f"{function}${props.get('Qualifier', '$LATEST')}")


EMULATED: tuple[type[_Emulated], ...] = (
    SecretsManagerSecret,
    SecretsManagerResourcePolicy,
    S3BucketPolicy,
    SnsTopicPolicy,
    CloudFrontOriginAccessControl,
    CloudFrontDistribution,
    CloudWatchAlarm,
    SchedulerSchedule,
    LambdaEventInvokeConfig,
)
"""The types registered, in the order of the module docstring's table."""


def _parse_json_first(template: str) -> dict[str, Any]:
    """A template body as moto parses it, JSON read as JSON: the same dict, without pure-Python YAML's ~0.3 s."""
    if template.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            parsed: dict[str, Any] = json.loads(template)
            return parsed
    return _parse_template_as_moto_does(template)


_parse_template_as_moto_does = MotoStack.parse_template


class _PrivateKeyWhenUsed:
    """moto's KMS makes an RSA-2048 private key for every key, symmetric ones too (~90 ms each): made on first use here."""

    def __init__(self, key_spec: str) -> None:
        self._key_spec = key_spec
        self._key: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._key is None:
                self._key = _generate_private_key(self._key_spec)
        return getattr(self._key, name)


_generate_private_key = kms_models.generate_private_key  # type: ignore[attr-defined]


def _private_key(key_spec: str) -> Any:
    return _PrivateKeyWhenUsed(key_spec) if key_spec == "SYMMETRIC_DEFAULT" else _generate_private_key(key_spec)


def register() -> None:
    """Make moto's CloudFormation in this process create the :data:`EMULATED` types (idempotent).

    moto caches its type map on first use; clearing the caches makes it look at
    ``CloudFormationModel.__subclasses__()`` again, where these classes are.

    Two speed-ups for deploying the template per test, neither changing an answer: a template body that is JSON
    is parsed as JSON (moto tries pure-Python YAML first, which reads JSON to the same dict, slowly), and a
    symmetric KMS key's unused RSA key pair (moto's KMS makes one for every key) is made only if something uses it.
    """
    MotoStack.parse_template = staticmethod(_parse_json_first)  # type: ignore[method-assign]
    kms_models.generate_private_key = _private_key  # type: ignore[attr-defined]
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    model_map = parsing.get_model_map()
    registered: dict[str, object] = dict(model_map)
    missing = [model.cloudformation_type() for model in EMULATED if registered.get(model.cloudformation_type()) is not model]
    if missing:
        raise RuntimeError(f"moto's CloudFormation did not take the local emulations of {', '.join(missing)}")
