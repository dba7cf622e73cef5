"""The template's side of caller identity: the policy file, the invoke fences, the audit log group and its key,
the refusal alarms, and the layer's hash-pinned requirements."""

from __future__ import annotations

import re
from typing import Any

import pytest

from jwks_rotator.adapters.sdk.observability import NAMESPACE, SERVICE
from jwks_rotator.core.errors import CallerNotAllowedError, ConfigurationError, SigningUnavailableError, UnauthenticatedError
from jwks_rotator.core.issuance.profiles import load_issuance_policy
from jwks_rotator.core.issuance.service import AuditRecord
from jwks_rotator.core.settings import SETTINGS_BY_ATTRIBUTE
from tests.sign_support import load_sign_app
from tests.template.cfn import ROOT, as_list, function_environment, policy_statements

LAYER_REQUIREMENTS = ROOT / "layers/jwks_rotator/requirements.txt"
LAYER_IN = ROOT / "requirements/layer.in"
DEV_REQUIREMENTS = ROOT / "requirements/dev.txt"
AUDIT_GROUP_NAME = "/aws/lambda/${AWS::StackName}-sign"
LOG_GROUP_CHANGES = ("logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
                     "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:DeleteLogStream", "logs:PutDataProtectionPolicy")


# --------------------------------------------------------------------------- the issuance policy file
def test_the_policy_file_parameter_reaches_the_function_and_ships_disabled(params: dict[str, Any], template: dict[str, Any]) -> None:
    spec = SETTINGS_BY_ATTRIBUTE["issuance_policy_file"]
    assert params["IssuancePolicyFile"]["Default"] == spec.default
    assert function_environment(template, "SignFunction")[spec.env] == {"Ref": "IssuancePolicyFile"}
    shipped = ROOT / "functions/sign" / spec.default
    policy = load_issuance_policy(shipped.read_text(), max_token_ttl=3600, default_token_ttl=900)
    assert policy.disabled and not policy.profiles, "the shipped policy must issue nothing until the operator writes profiles"
    assert template["Resources"]["SignFunction"]["Properties"]["CodeUri"].rstrip("/") == str(shipped.parent.relative_to(ROOT))


# --------------------------------------------------------------------------- who may invoke
def test_invoking_is_a_first_fence_kept_as_before(resources: dict[str, Any]) -> None:
    permission = resources["SignInvokePermission"]["Properties"]
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["Principal"] == {"Fn::If": ["HasSignInvokerPrincipal", {"Ref": "SignInvokerPrincipal"}, {"Ref": "AWS::AccountId"}]}
    statements = resources["SignInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statements == [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": {"Fn::GetAtt": ["SignFunction", "Arn"]}}]


# --------------------------------------------------------------------------- the audit log group
def test_the_sign_function_logs_only_to_the_audit_group_as_written(resources: dict[str, Any]) -> None:
    logging = resources["SignFunction"]["Properties"]["LoggingConfig"]
    # Text: audit lines reach the group byte for byte, and no log level filter can drop them.
    assert logging == {"LogGroup": {"Ref": "SignLogGroup"}, "LogFormat": "Text"}


def test_the_audit_group_is_retained_kept_for_its_retention_and_encrypted(template: dict[str, Any], params: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert template["Outputs"]["AuditLogGroupName"]["Value"] == {"Ref": "SignLogGroup"}
    group = resources["SignLogGroup"]
    assert group["DeletionPolicy"] == "Retain" and group["UpdateReplacePolicy"] == "Retain"
    props = group["Properties"]
    assert props["LogGroupName"] == {"Fn::Sub": AUDIT_GROUP_NAME}
    assert props["RetentionInDays"] == {"Ref": "AuditLogRetentionInDays"}
    assert props["KmsKeyId"] == {"Fn::If": ["CreatesAuditLogKey", {"Fn::GetAtt": ["AuditLogKey", "Arn"]}, {"Ref": "AuditLogKmsKeyArn"}]}
    retention = params["AuditLogRetentionInDays"]
    assert retention["Default"] in retention["AllowedValues"] and retention["Default"] >= 365
    key_arn = params["AuditLogKmsKeyArn"]
    assert key_arn["Default"] == "" and re.fullmatch(key_arn["AllowedPattern"], "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert not re.fullmatch(key_arn["AllowedPattern"], "alias/audit")  # CloudWatch Logs takes a key ARN only


def test_the_audit_key_serves_cloudwatch_logs_for_that_group_only(resources: dict[str, Any]) -> None:
    key = resources["AuditLogKey"]
    assert key["Condition"] == "CreatesAuditLogKey"
    assert key["DeletionPolicy"] == "Retain" and key["UpdateReplacePolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    uses = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:GenerateDataKey")
    assert not [a for a in statements["AccountAdministersTheKey"]["Action"] if a.startswith(uses)]
    logs = statements["CloudWatchLogsEncryptsTheAuditLogGroup"]
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    context = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]["Fn::Sub"]
    assert context == "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" + AUDIT_GROUP_NAME
    assert set(statements) == {"AccountAdministersTheKey", "CloudWatchLogsEncryptsTheAuditLogGroup"}


def test_no_identity_policy_in_the_stack_may_delete_or_reconfigure_a_log_group(resources: dict[str, Any]) -> None:
    for name, statement in policy_statements(resources):
        for action in as_list(statement["Action"]):
            assert action not in LOG_GROUP_CHANGES and action != "logs:*", f"{name} may {action}"


# --------------------------------------------------------------------------- refusal alarms
def _refusal_metric(code: str) -> str:
    """The metric name the sign function counts a refusal with code ``code`` under (as its handler does)."""
    app = load_sign_app()
    app.audit.write = lambda _record: None
    app._on_decision(AuditRecord("refused", code, None, None, None, None, "digest"))
    (name,) = app._counts
    return str(name)


ALARMS = {
    "SignRefusalBurstAlarm": (UnauthenticatedError.code, CallerNotAllowedError.code),
    "SignerUnavailableAlarm": (SigningUnavailableError.code, ConfigurationError.code),
}


@pytest.mark.parametrize("alarm", sorted(ALARMS))
def test_refusal_alarms_sum_metrics_the_sign_function_emits(alarm: str, resources: dict[str, Any]) -> None:
    props = resources[alarm]["Properties"]
    queries = {q["Id"]: q for q in props["Metrics"]}
    (expression,) = [q for q in queries.values() if "Expression" in q]
    assert expression["ReturnData"] is True
    stats = {q["Id"]: q["MetricStat"] for q in queries.values() if "MetricStat" in q}
    watched = {stat["Metric"]["MetricName"] for stat in stats.values()}
    assert watched == {_refusal_metric(code) for code in ALARMS[alarm]}
    for query_id, stat in stats.items():
        assert queries[query_id]["ReturnData"] is False
        assert stat["Metric"]["Namespace"] == NAMESPACE
        assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
        assert stat["Stat"] == "Sum"
        assert f"FILL({query_id}, 0)" in expression["Expression"], "a code never refused must count as zero"
    assert props["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    assert props["TreatMissingData"] == "notBreaching"


def test_the_burst_alarm_counts_five_minutes_against_its_parameter(resources: dict[str, Any], params: dict[str, Any]) -> None:
    props = resources["SignRefusalBurstAlarm"]["Properties"]
    assert {q["MetricStat"]["Period"] for q in props["Metrics"] if "MetricStat" in q} == {300}
    assert props["Threshold"] == {"Ref": "RefusalBurstThreshold"} and props["EvaluationPeriods"] == 1
    assert params["RefusalBurstThreshold"]["Default"] >= 1


def test_the_outage_alarm_fires_on_two_of_three_minutes(resources: dict[str, Any]) -> None:
    props = resources["SignerUnavailableAlarm"]["Properties"]
    assert {q["MetricStat"]["Period"] for q in props["Metrics"] if "MetricStat" in q} == {60}
    assert (props["EvaluationPeriods"], props["DatapointsToAlarm"], props["Threshold"]) == (3, 2, 1)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_a_spent_replay_budget_has_its_own_alarm_on_the_metric_the_sign_function_emits(resources: dict[str, Any]) -> None:
    app = load_sign_app()
    app._counts.clear()
    app._on_proof_event("rate_limited")
    (name,) = app._counts
    props = resources["ProofRateLimitedAlarm"]["Properties"]
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (NAMESPACE, name, "Sum")
    assert props["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert (props["Period"], props["EvaluationPeriods"], props["Threshold"]) == (300, 1, 1)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and props["TreatMissingData"] == "notBreaching"
    assert props["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}


# --------------------------------------------------------------------------- the layer's requirements
def _requirements(text: str) -> dict[str, tuple[str, list[str]]]:
    """``name -> (version, hashes)`` from a pip requirements file (continuation lines joined, comments dropped)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    for logical in re.sub(r"\\\n", " ", text).splitlines():
        line = logical.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)((?:\s+--hash=sha256:[0-9a-f]{64})*)", line)
        assert match, f"not an exact pin with sha256 hashes: {line!r}"
        name = re.sub(r"[-_.]+", "-", match[1]).lower()
        entries[name] = (match[2], re.findall(r"sha256:([0-9a-f]{64})", match[3]))
    return entries


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^]]*\])?==([^\s;#]+).*", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def test_every_layer_requirement_is_pinned_with_hashes() -> None:
    entries = _requirements(LAYER_REQUIREMENTS.read_text())
    for name, (_version, hashes) in entries.items():
        assert hashes, f"{name} has no --hash: pip would refuse the file in --require-hashes mode"
        assert len(set(hashes)) == len(hashes), f"{name} lists a hash twice"
    # the sign function's policy parser and the native packages the runtime loads, with their dependencies
    assert {"pyyaml", "cryptography", "cffi", "pycparser", "jwcrypto", "aws-lambda-powertools"} <= set(entries)


def test_the_layer_resolves_layer_in_with_the_versions_the_tests_use() -> None:
    entries = _requirements(LAYER_REQUIREMENTS.read_text())
    direct = _pins(LAYER_IN.read_text())
    dev = _pins(DEV_REQUIREMENTS.read_text())
    assert direct, "requirements/layer.in pins nothing"
    for name, version in direct.items():
        assert entries[name][0] == version, f"{name}: layer.in pins {version}, requirements.txt holds {entries[name][0]} (run make lock-layer)"
        assert dev.get(name) == version, f"{name}: the tests run {dev.get(name)}, Lambda would run {version}"
