"""Audit lines from a local function to CloudWatch Logs (moto) and back through ``jwks-rotator audit``.

A tiny handler writes decisions with the product's AuditLog (plus the noise a
real function prints); the local Lambda API delivers its stdout to moto, and
the CLI reads it with FilterLogEvents. moto ignores JSON filter patterns and
returns every event, so these tests show the CLI's own check doing the filtering.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jwks_rotator.adapters.lean.audit_log import AuditLog
from jwks_rotator.core.issuance.service import AuditRecord
from jwks_rotator.core.issuance.signer import IssuedToken
from jwks_rotator_cli.main import cli
from jwks_rotator_local.lambda_api import LambdaApi, LocalFunction
from jwks_rotator_testkit.moto import aws_client

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
ORDERS = f"arn:aws:iam::{ACCOUNT}:role/orders-api"
BILLING = f"arn:aws:iam::{ACCOUNT}:role/billing"


def session_arn(role: str, session: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.rsplit('/', 1)[1]}/{session}"


def decide(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Stands in for the sign function: one audit line per call, written as the real one writes it, and some noise."""
    at = event.get("at")
    log = AuditLog(clock=(lambda: float(at)) if at is not None else time.time)
    log.function_version = context.function_version
    role = event["role"]
    caller = session_arn(role, event.get("session", "s1"))
    if event.get("decision", "issued") == "issued":
        issued = IssuedToken(token="eyJ.never.logged", kid="k1", alg="ES256", jti=event["jti"], aud="orders", ttl=300, expires_at=int(time.time()) + 300)
        record = AuditRecord("issued", None, None, caller, role, "orders", "sha256:p", issued, event.get("sub", "alice"))
    else:
        record = AuditRecord("refused", event["error"], "not in the policy", caller, role, None, "sha256:p")
    print(f"plain text mentioning {event.get('jti')} and {role}")
    print(json.dumps({"level": "INFO", "message": "decided", "jti": event.get("jti"), "role": role}))
    log.write(record)
    return {"ok": True}


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"sign": f"AuditSign{suffix}", "other": f"AuditOther{suffix}", "audit_group": f"/jwks-rotator/audit-{suffix}"}


@pytest.fixture(scope="module")
def api(moto_endpoint: str, names: dict[str, str]) -> Iterator[LambdaApi]:
    api = LambdaApi(
        [LocalFunction(names["sign"], decide), LocalFunction(names["other"], decide)],
        logs_endpoint=moto_endpoint,
        log_groups={names["other"]: names["audit_group"]},
        echo=False,
    )
    api.start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def logs(moto_endpoint: str) -> Any:
    return aws_client("logs", moto_endpoint)


@pytest.fixture(scope="module")
def decided(api: LambdaApi, names: dict[str, str]) -> dict[str, Any]:
    """Decisions in the sign function's group: two roles, two sessions, issued and refused, and one backdated three hours."""
    sign = names["sign"]
    three_hours_ago = time.time() - 3 * 3600
    events = [
        {"jti": "jti-a", "role": ORDERS, "session": "s1", "sub": "alice"},
        {"jti": "jti-b", "role": ORDERS, "session": "s2", "sub": "bob"},
        {"jti": "jti-c", "role": BILLING, "session": "s1", "sub": "alice"},
        {"jti": None, "role": BILLING, "session": "s1", "decision": "refused", "error": "audience_not_allowed"},
        {"jti": "jti-old", "role": ORDERS, "session": "s1", "sub": "carol", "at": three_hours_ago},
    ]
    for event in events[:3]:
        assert api.invoke(sign, event).function_error is None
    time.sleep(0.02)
    middle = datetime.now(UTC)
    time.sleep(0.02)
    for event in events[3:]:
        assert api.invoke(sign, event).function_error is None
    assert api.flush_logs()
    return {"middle": middle}


def audit(moto_endpoint: str, tmp_path: Path, *args: str) -> Result:
    state = str(tmp_path / "no-state.json")
    return CliRunner().invoke(cli, ["--endpoint-url", moto_endpoint, "--state-file", state, "audit", *args], catch_exceptions=False)


def json_lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(text) for text in result.stdout.splitlines()]


def jtis(result: Result) -> list[str | None]:
    return [record.get("jti") for record in json_lines(result)]


# --- delivery ----------------------------------------------------------------
def test_each_line_a_function_prints_lands_in_its_log_group_in_order(api, logs, names, decided):
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{names['sign']}")["events"]
    streams = {e["logStreamName"] for e in events}
    assert all(re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", s) for s in streams)
    assert len(streams) == 1  # one invocation at a time: one execution environment, reused
    messages = [e["message"] for e in events]  # one stream: in the order delivered
    assert [m.split(" ")[0] for m in messages if not m.startswith(("{", "plain"))] == ["START", "END", "REPORT"] * 5
    first = messages[:6]
    assert first[0].startswith("START RequestId: ") and first[0].endswith(" Version: $LATEST")
    assert first[1] == f"plain text mentioning jti-a and {ORDERS}"
    assert json.loads(first[2])["level"] == "INFO"
    assert json.loads(first[3])["type"] == "jwks-rotator.audit" and json.loads(first[3])["jti"] == "jti-a"
    assert first[4] == "END " + first[0][len("START ") :].split(" Version")[0]
    assert re.fullmatch(r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB", first[5])
    assert not any("eyJ.never.logged" in m for m in messages)


def test_log_groups_maps_a_function_to_another_group(api, logs, names):
    assert api.invoke(names["other"], {"jti": "jti-elsewhere", "role": ORDERS}).function_error is None
    assert api.flush_logs()
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=names["audit_group"])["events"]]
    assert sum('"jti":"jti-elsewhere"' in m for m in messages) == 1
    groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{names['other']}")["logGroups"]]
    assert groups == []


def test_context_reports_the_group_and_stream_the_lines_go_to(moto_endpoint, logs):
    seen: list[tuple[str, str]] = []

    def remember(event: Any, context: Any) -> None:
        seen.append((context.log_group_name, context.log_stream_name))
        print("hello")

    name = f"Remember{uuid.uuid4().hex[:8]}"
    api = LambdaApi([LocalFunction(name, remember)], logs_endpoint=moto_endpoint, echo=False)
    api.invoke(name, {})
    api.invoke(name, {})
    assert api.flush_logs()
    assert seen[0] == seen[1]
    group, stream = seen[0]
    assert group == f"/aws/lambda/{name}"
    messages = [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]
    assert messages.count("hello") == 2
    api.stop()


def test_lines_are_echoed_to_stdout_only_when_asked(moto_endpoint, logs, capsys):
    def shout(event: Any, context: Any) -> None:
        print(f"line-{event['n']}")

    name = f"Shout{uuid.uuid4().hex[:8]}"
    for echo, n in ((True, 1), (False, 2)):
        api = LambdaApi([LocalFunction(name, shout)], logs_endpoint=moto_endpoint, echo=echo)
        api.invoke(name, {"n": n})
        assert api.flush_logs()
        api.stop()
    out = capsys.readouterr().out
    assert "line-1" in out and "line-2" not in out
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
    assert messages.count("line-1") == 1 and messages.count("line-2") == 1


def test_logging_handlers_made_before_capture_are_captured(moto_endpoint, logs):
    logger = logging.getLogger(f"made-before-{uuid.uuid4().hex[:8]}")
    handler = logging.StreamHandler(sys.stdout)  # as powertools' Logger does when a module is imported
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def speak(event: Any, context: Any) -> None:
        logger.info("from a logger")

    name = f"Speak{uuid.uuid4().hex[:8]}"
    api = LambdaApi([LocalFunction(name, speak)], logs_endpoint=moto_endpoint, echo=False)
    try:
        api.invoke(name, {})
        assert api.flush_logs()
    finally:
        logger.removeHandler(handler)
        api.stop()
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
    assert messages.count("from a logger") == 1


def test_delivery_failures_never_fail_an_invocation():
    def chatty(event: Any, context: Any) -> str:
        print("to nowhere")
        return "done"

    api = LambdaApi([LocalFunction("Chatty", chatty)], logs_endpoint=endpoint_where_nothing_listens(), echo=False)
    result = api.invoke("Chatty", {})
    assert result.payload == "done" and result.function_error is None
    assert api.flush_logs(timeout=30)
    assert api.dropped_log_lines == 4  # START, the line, END, REPORT
    api.stop()


def endpoint_where_nothing_listens() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_concurrent_invocations_each_land_once_and_never_cross(api, moto_endpoint, logs):
    # Two functions and two invocations of each, all running at once (a barrier holds them until four are in),
    # each writing its lines while the others write theirs.
    suffix = uuid.uuid4().hex[:8]
    barrier = threading.Barrier(4, timeout=20)

    def chatter(event: Any, context: Any) -> None:
        barrier.wait()
        for i in range(25):
            print(f"{context.function_name} {event['id']} line {i}")
            time.sleep(0.001)

    left, right = f"Left{suffix}", f"Right{suffix}"
    busy = LambdaApi([LocalFunction(left, chatter), LocalFunction(right, chatter)], logs_endpoint=moto_endpoint, echo=False)
    url = busy.start()
    lam = aws_client("lambda", url)
    calls = [(left, "a"), (right, "b"), (left, "c"), (right, "d")]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda call: lam.invoke(FunctionName=call[0], Payload=json.dumps({"id": call[1]})), calls))
        assert all(r["StatusCode"] == 200 and "FunctionError" not in r for r in results)
        assert busy.flush_logs()
    finally:
        busy.stop()
    for function, ids in ((left, ("a", "c")), (right, ("b", "d"))):
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
        printed = sorted(e["message"] for e in events if not e["message"].startswith(("START", "END", "REPORT")))
        assert printed == sorted(f"{function} {i} line {n}" for i in ids for n in range(25))
        by_stream: dict[str, set[str]] = {}
        for e in events:
            if " line " in e["message"]:
                by_stream.setdefault(e["logStreamName"], set()).add(e["message"].split(" ")[1])
        assert sorted(map(sorted, by_stream.values())) == [[ids[0]], [ids[1]]]  # concurrent: an environment each


# --- the audit command ---------------------------------------------------------
def test_jti_says_who_minted_it(moto_endpoint, tmp_path, names, decided):
    records = json_lines(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--jti", "jti-b", "--json"))
    assert len(records) == 1
    (record,) = records
    assert record["type"] == "jwks-rotator.audit"
    assert (record["caller"], record["role"], record["sub"], record["decision"]) == (session_arn(ORDERS, "s2"), ORDERS, "bob", "issued")


def test_table_shows_the_decision_s_fields(moto_endpoint, tmp_path, names, decided):
    result = audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--jti", "jti-b")
    assert result.exit_code == 0, result.output
    for text in ("jti-b", "bob", "issued", "orders", "k1"):
        assert text in result.stdout
    assert "jti-a" not in result.stdout and "plain text" not in result.stdout and "decided" not in result.stdout


def test_caller_role_arn_matches_every_session_of_the_role(moto_endpoint, tmp_path, names, decided):
    assert jtis(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--caller", ORDERS, "--json")) == ["jti-a", "jti-b", "jti-old"]
    with_path = f"arn:aws:iam::{ACCOUNT}:role/service/billing"
    records = json_lines(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--caller", with_path, "--json"))
    assert [(r.get("jti"), r["decision"]) for r in records] == [("jti-c", "issued"), (None, "refused")]


def test_caller_sts_arn_matches_that_session_only(moto_endpoint, tmp_path, names, decided):
    sign = ("--function-name", names["sign"], "--json")
    assert jtis(audit(moto_endpoint, tmp_path, *sign, "--caller", session_arn(ORDERS, "s1"))) == ["jti-a", "jti-old"]
    assert jtis(audit(moto_endpoint, tmp_path, *sign, "--caller", session_arn(ORDERS, "s2"))) == ["jti-b"]
    assert jtis(audit(moto_endpoint, tmp_path, *sign, "--caller", session_arn(ORDERS, "s3"))) == []


def test_sub_and_decision_narrow(moto_endpoint, tmp_path, names, decided):
    assert jtis(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--sub", "alice", "--json")) == ["jti-a", "jti-c"]
    refused = json_lines(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--decision", "refused", "--json"))
    assert [(r["error"], r["role"]) for r in refused] == [("audience_not_allowed", BILLING)]
    issued = jtis(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--decision", "issued", "--caller", BILLING, "--json"))
    assert issued == ["jti-c"]


def test_since_and_until_select_by_the_event_s_time_not_the_line_s_text(moto_endpoint, tmp_path, names, decided):
    sign = ("--function-name", names["sign"], "--json")
    # The line that prints a time three hours back was logged now: CloudWatch's timestamp places it, last.
    assert jtis(audit(moto_endpoint, tmp_path, *sign)) == ["jti-a", "jti-b", "jti-c", None, "jti-old"]
    middle = decided["middle"].isoformat()
    assert jtis(audit(moto_endpoint, tmp_path, *sign, "--until", middle, "--since", "1h")) == ["jti-a", "jti-b", "jti-c"]
    assert jtis(audit(moto_endpoint, tmp_path, *sign, "--since", middle)) == [None, "jti-old"]
    assert jtis(audit(moto_endpoint, tmp_path, *sign, "--since", "2h")) == ["jti-a", "jti-b", "jti-c", None, "jti-old"]
    assert jtis(audit(moto_endpoint, tmp_path, *sign, "--since", "4h", "--jti", "jti-old")) == ["jti-old"]


def test_only_matching_audit_lines_print_although_the_server_returns_everything(moto_endpoint, tmp_path, logs, names, decided):
    group = f"/aws/lambda/{names['sign']}"
    now = int(time.time() * 1000)
    logs.create_log_stream(logGroupName=group, logStreamName="planted")
    planted = [
        "not json at all, jti-a",
        '{"jti": "jti-a", "role": "' + ORDERS + '"}',  # JSON, but not an audit line
        json.dumps({"type": "jwks-rotator.audit", "time": datetime.now(UTC).isoformat(), "decision": "issued", "jti": "jti-z", "role": ORDERS}),
        json.dumps({"type": "something.else", "jti": "jti-a"}),
        "[1, 2, 3]",
    ]
    logs.put_log_events(logGroupName=group, logStreamName="planted", logEvents=[{"timestamp": now, "message": m} for m in planted])
    pattern = '{ $.type = "jwks-rotator.audit" && $.jti = "jti-a" }'
    served = [e["message"] for e in logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]]
    assert set(planted) <= set(served)  # moto ignored the pattern: the CLI must do the filtering
    records = json_lines(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--jti", "jti-a", "--json"))
    assert [(r["jti"], r["role"], r["type"]) for r in records] == [("jti-a", ORDERS, "jwks-rotator.audit")]
    assert set(records[0]) == {"type", "time", "line_time", "function_version", "decision", "error", "reason", "caller", "role", "profile",
                               "policy", "jti", "sub", "aud", "kid", "exp"}  # time: the event's; line_time: what the line printed


def test_every_page_is_read(moto_endpoint, tmp_path, logs):
    # moto's FilterLogEvents answers at most 10,000 events a page (AWS: 10,000 or 1 MB): put more, with matches on both pages.
    group = f"/jwks-rotator/paged-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    start = int(time.time() * 1000) - 60_000

    def audit_line(jti: str, offset: int) -> str:
        at = datetime.fromtimestamp((start + offset) / 1000, UTC).isoformat()
        return json.dumps({"type": "jwks-rotator.audit", "time": at, "decision": "issued", "role": ORDERS, "jti": jti})

    messages = [audit_line("first", 0), *(audit_line(f"filler-{i}", i + 1) for i in range(10_200)), audit_line("last", 10_201)]
    messages[5000] = audit_line("middle", 5000)
    for chunk in range(0, len(messages), 5000):
        logs.put_log_events(
            logGroupName=group, logStreamName="s", logEvents=[{"timestamp": start + i, "message": m} for i, m in enumerate(messages[chunk : chunk + 5000], chunk)]
        )
    assert logs.filter_log_events(logGroupName=group).get("nextToken")  # more than one page
    found = jtis(audit(moto_endpoint, tmp_path, "--log-group", group, "--json"))
    assert len(found) == len(messages) == 10_202
    assert found[0] == "first" and found[5000] == "middle" and found[-1] == "last"
    assert jtis(audit(moto_endpoint, tmp_path, "--log-group", group, "--json", "--jti", "last")) == ["last"]


def test_the_log_group_option_reads_another_group(moto_endpoint, tmp_path, api, names):
    assert api.invoke(names["other"], {"jti": "jti-grouped", "role": BILLING}).function_error is None
    assert api.flush_logs()
    assert jtis(audit(moto_endpoint, tmp_path, "--log-group", names["audit_group"], "--jti", "jti-grouped", "--json")) == ["jti-grouped"]
    base = ["--endpoint-url", moto_endpoint, "--state-file", str(tmp_path / "none.json"), "audit", "--jti", "jti-grouped", "--json"]
    from_env = CliRunner().invoke(cli, base, env={"AUDIT_LOG_GROUP": names["audit_group"]}, catch_exceptions=False)
    assert jtis(from_env) == ["jti-grouped"]


# --- one-line failures -------------------------------------------------------------
def test_a_missing_log_group_is_one_line(moto_endpoint, tmp_path):
    result = audit(moto_endpoint, tmp_path, "--function-name", "NoSuchFunction", "--jti", "x")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: log group /aws/lambda/NoSuchFunction not found (no decision logged yet, or pass --log-group)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "error: --since: 'yesterday' is neither a time"),
        (("--until", "soon"), "error: --until: 'soon' is neither a time"),
        (("--since", "1h", "--until", "2h"), "error: since ("),
    ],
)
def test_bad_times_are_one_line(moto_endpoint, tmp_path, args, message):
    result = audit(moto_endpoint, tmp_path, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_no_match_says_so_on_stderr(moto_endpoint, tmp_path, names, decided):
    result = audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--jti", "never-issued")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.startswith(f"no matching decisions in /aws/lambda/{names['sign']} between ")


def test_since_default_is_a_day(moto_endpoint, tmp_path, logs, names, decided):
    group = f"/aws/lambda/{names['sign']}"
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    logs.create_log_stream(logGroupName=group, logStreamName="old")
    line = json.dumps({"type": "jwks-rotator.audit", "time": two_days_ago.isoformat(), "decision": "issued", "jti": "jti-ancient", "role": ORDERS})
    logs.put_log_events(logGroupName=group, logStreamName="old", logEvents=[{"timestamp": int(two_days_ago.timestamp() * 1000), "message": line}])
    assert jtis(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--jti", "jti-ancient", "--json")) == []
    assert jtis(audit(moto_endpoint, tmp_path, "--function-name", names["sign"], "--jti", "jti-ancient", "--since", "3d", "--json")) == ["jti-ancient"]
