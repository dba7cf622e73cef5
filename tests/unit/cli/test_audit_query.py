"""Which audit lines answer an ``audit`` query: times, callers, subjects, the server-side pattern and the client-side check."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jwks_rotator.adapters.lean.audit_log import AUDIT_TYPE as WRITTEN_TYPE
from jwks_rotator.adapters.lean.audit_log import AuditLog
from jwks_rotator.core.issuance.service import MAX_AUDIT_SUB_CHARS, AuditRecord
from jwks_rotator.core.issuance.signer import IssuedToken
from jwks_rotator_cli.audit import table_lines
from jwks_rotator_cli.audit_query import (
    AUDIT_SUB_BOUND,
    AUDIT_TYPE,
    AuditQuery,
    caller_field,
    function_log_group,
    parse_audit_line,
    parse_when,
    select,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DAY_AGO = NOW - timedelta(days=1)
ROLE = "arn:aws:iam::123456789012:role/orders-api"
SESSION = "arn:aws:sts::123456789012:assumed-role/orders-api/i-0abc"


def line(**fields: object) -> dict[str, object]:
    """An issued decision's audit line at 11:00, overridden by ``fields``."""
    record: dict[str, object] = {
        "type": AUDIT_TYPE,
        "time": "2026-11-26T11:00:00.000Z",
        "function_version": "$LATEST",
        "decision": "issued",
        "error": None,
        "reason": None,
        "caller": SESSION,
        "role": ROLE,
        "profile": "orders",
        "policy": "sha256:abc",
        "jti": "jti-1",
        "sub": "alice",
        "aud": "orders",
        "kid": "k1",
        "exp": 1795700000,
    }
    record.update(fields)
    return record


def query(**narrowing: str) -> AuditQuery:
    return AuditQuery(since=DAY_AGO, until=NOW, **narrowing)


# --- times -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("1d12h", NOW - timedelta(hours=36)),
        ("90s", NOW - timedelta(seconds=90)),
        ("1w", NOW - timedelta(days=7)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("2026-11-26T10:00:00Z", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("2026-11-26T10:00:00", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("2026-11-26T12:00:00+02:00", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("2026-11-26", datetime(2026, 11, 26, tzinfo=UTC)),
    ],
)
def test_since_is_a_duration_before_now_or_a_time(text, expected):
    when = parse_when(text, NOW)
    assert when == expected
    assert when.tzinfo is not None and when.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "2x", "-2h", "", "2026-13-01"])
def test_anything_else_is_refused_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match="neither a time") as caught:
        parse_when(text, NOW)
    assert "2h" in str(caught.value)


def test_window_must_not_end_before_it_starts():
    with pytest.raises(ValueError, match="after until"):
        AuditQuery(since=NOW, until=DAY_AGO)


def test_decision_is_issued_or_refused():
    with pytest.raises(ValueError, match="issued, refused"):
        AuditQuery(since=DAY_AGO, until=NOW, decision="maybe")


# --- callers ---------------------------------------------------------------
def test_role_arn_matches_the_role_field_without_its_path():
    assert caller_field(ROLE) == ("role", ROLE)
    assert caller_field("arn:aws:iam::123456789012:role/service/team/orders-api") == ("role", ROLE)
    assert caller_field("arn:aws-cn:iam::123456789012:role/x") == ("role", "arn:aws-cn:iam::123456789012:role/x")


def test_any_other_arn_matches_the_caller_field_exactly():
    assert caller_field(SESSION) == ("caller", SESSION)
    user = "arn:aws:iam::123456789012:user/ops/bob"
    assert caller_field(user) == ("caller", user)


def test_role_query_matches_every_session_of_the_role():
    q = query(caller=ROLE)
    assert q.matches(line())
    assert q.matches(line(caller=SESSION.replace("i-0abc", "other-session")))
    assert not q.matches(line(role="arn:aws:iam::123456789012:role/billing", caller="arn:aws:sts::123456789012:assumed-role/billing/s"))
    assert not q.matches(line(role="arn:aws:iam::999999999999:role/orders-api"))


def test_session_query_matches_only_that_session():
    q = query(caller=SESSION)
    assert q.matches(line())
    assert not q.matches(line(caller=SESSION.replace("i-0abc", "i-0def")))


# --- the client-side check -------------------------------------------------
def test_each_field_narrows():
    assert query(jti="jti-1").matches(line())
    assert not query(jti="jti-2").matches(line())
    assert query(sub="alice").matches(line())
    assert not query(sub="bob").matches(line())
    assert query(decision="issued").matches(line())
    assert not query(decision="refused").matches(line())
    assert query(jti="jti-1", sub="alice", caller=ROLE, decision="issued").matches(line())
    assert not query(jti="jti-1", sub="alice", caller=ROLE, decision="refused").matches(line())


def test_a_refusal_has_no_token_fields_and_matches_no_jti():
    refusal = line(decision="refused", error="audience_not_allowed", reason="audience x")
    for name in ("jti", "sub", "aud", "kid", "exp"):
        refusal.pop(name)
    assert query(decision="refused", caller=ROLE).matches(refusal)
    assert not query(jti="jti-1").matches(refusal)
    assert not query(sub="alice").matches(refusal)


def test_only_audit_lines_match():
    assert not query().matches(line(type="something.else"))
    assert not query().matches({k: v for k, v in line().items() if k != "type"})
    assert query().matches(line())


def test_the_event_s_timestamp_decides_the_window_not_the_line_s_text():
    q = AuditQuery(since=NOW - timedelta(hours=2), until=NOW - timedelta(hours=1))
    inside, outside = NOW - timedelta(minutes=90), NOW
    assert q.matches(line(time="2026-11-26T08:00:00.000Z"), inside)  # a line claiming another time is placed by CloudWatch's
    assert not q.matches(line(time="2026-11-26T10:30:00.000Z"), outside)
    assert q.matches(line(time=None), NOW - timedelta(hours=2)) and q.matches(line(time=None), NOW - timedelta(hours=1))  # both ends
    # Only an event without a timestamp falls back to the line's own time.
    assert q.matches(line(time="2026-11-26T10:30:00.000Z"))
    assert not q.matches(line(time="2026-11-26T09:59:59.999Z"))
    assert not q.matches(line(time="garbage"))
    assert not q.matches(line(time=None))


def test_a_subject_cut_in_the_line_still_matches_the_full_subject():
    long_sub = "user:" + "x" * 300
    cut = long_sub[: AUDIT_SUB_BOUND - 1] + "…"
    assert query(sub=long_sub).matches(line(sub=cut))
    assert not query(sub="user:" + "y" * 300).matches(line(sub=cut))
    assert not query(sub=long_sub[:50]).matches(line(sub=cut))  # a prefix shorter than the bound is another subject


def test_parse_audit_line_skips_everything_but_audit_objects():
    assert parse_audit_line(json.dumps(line())) == line()
    assert parse_audit_line("  " + json.dumps(line()) + "\n") == line()
    assert parse_audit_line("START RequestId: 1 Version: $LATEST") is None
    assert parse_audit_line('{"type": "other", "jti": "jti-1"}') is None
    assert parse_audit_line('{"type": "jwks-rotator.audit", ') is None
    assert parse_audit_line(json.dumps([line()])) is None
    assert parse_audit_line("") is None


def test_select_keeps_matches_oldest_first_and_skips_the_rest():
    def at(hour: int, minute: int) -> int:
        return int(datetime(2026, 11, 26, hour, minute, tzinfo=UTC).timestamp() * 1000)

    events = [
        {"timestamp": at(11, 30), "message": json.dumps(line(jti="late", time="2026-11-26T09:00:00.000Z"))},  # claims earlier
        {"timestamp": at(11, 0), "message": "REPORT RequestId: 1\tDuration: 1 ms"},
        {"timestamp": at(10, 30), "message": json.dumps(line(jti="early"))},
        {"timestamp": at(10, 40), "message": json.dumps(line(jti="other-role", role="arn:aws:iam::123456789012:role/billing"))},
        {"timestamp": at(10, 45), "message": '{"level": "INFO", "message": "issued", "jti": "early"}'},
        {"timestamp": int(DAY_AGO.timestamp() * 1000) - 1, "message": json.dumps(line(jti="too-old", time="2026-11-26T11:00:00.000Z"))},
    ]
    selected = select(events, query(caller=ROLE))
    assert [r["jti"] for r in selected] == ["early", "late"]
    assert [r["time"] for r in selected] == ["2026-11-26T10:30:00.000Z", "2026-11-26T11:30:00.000Z"]  # the events' times
    assert selected[1]["line_time"] == "2026-11-26T09:00:00.000Z"


# --- the server-side pattern -----------------------------------------------
def test_filter_pattern_names_the_type_and_every_field():
    assert query().filter_pattern() == '{ $.type = "jwks-rotator.audit" }'
    assert query(jti="abc").filter_pattern() == '{ $.type = "jwks-rotator.audit" && $.jti = "abc" }'
    assert query(caller=ROLE, decision="issued").filter_pattern() == (f'{{ $.type = "jwks-rotator.audit" && $.decision = "issued" && $.role = "{ROLE}" }}')
    assert query(caller=SESSION, sub="alice").filter_pattern() == (f'{{ $.type = "jwks-rotator.audit" && $.caller = "{SESSION}" && $.sub = "alice" }}')


def test_values_a_pattern_cannot_carry_are_left_to_the_client_side_check():
    for awkward in ('a"b', "a\\b", "a*", "tab\there", "x" * 300):
        pattern = query(jti=awkward).filter_pattern()
        assert pattern == '{ $.type = "jwks-rotator.audit" }'
        assert query(jti=awkward).matches(line(jti=awkward))
    assert "$.sub" not in query(sub="s" * AUDIT_SUB_BOUND).filter_pattern()  # may be cut in the line


def test_filter_pattern_stays_within_the_service_limit():
    q = query(jti="j" * 250, caller="arn:aws:sts::123456789012:assumed-role/" + "r" * 64 + "/" + "s" * 64, sub="u" * 120, decision="issued")
    assert len(q.filter_pattern()) <= 1024


def test_time_range_widens_the_window_for_the_server():
    start, end = query().time_range_ms(timedelta(minutes=1))
    assert start == int((DAY_AGO - timedelta(minutes=1)).timestamp() * 1000)
    assert end == int((NOW + timedelta(minutes=1)).timestamp() * 1000)


def test_function_log_group_from_name_qualifier_or_arn():
    assert function_log_group("SignFunction") == "/aws/lambda/SignFunction"
    assert function_log_group("jwks-sign:live") == "/aws/lambda/jwks-sign"
    assert function_log_group("arn:aws:lambda:eu-west-1:123456789012:function:jwks-sign:3") == "/aws/lambda/jwks-sign"


# --- agreement with what the sign function writes --------------------------
def test_constants_agree_with_the_audit_log():
    assert AUDIT_TYPE == WRITTEN_TYPE
    assert AUDIT_SUB_BOUND == MAX_AUDIT_SUB_CHARS


def test_lines_the_audit_log_writes_are_matched():
    stream = io.StringIO()
    log = AuditLog(stream=stream, clock=lambda: (NOW - timedelta(minutes=5)).timestamp())
    issued = IssuedToken(token="never-logged", kid="k1", alg="ES256", jti="jti-9", aud=["a", "b"], ttl=300, expires_at=1795700000)
    log.write(AuditRecord("issued", None, None, SESSION, ROLE, "orders", "sha256:p", issued, "user:" + "z" * 200))
    log.write(AuditRecord("refused", "caller_not_allowed", "no profile", SESSION, ROLE, None, "sha256:p"))
    records = [parse_audit_line(text) for text in stream.getvalue().splitlines()]
    assert all(records)
    issued_line, refused_line = records
    assert query(jti="jti-9", caller=ROLE, sub="user:" + "z" * 200, decision="issued").matches(issued_line)
    assert query(caller=SESSION, decision="refused").matches(refused_line)
    assert not query(jti="jti-9").matches(refused_line)
    since_then = AuditQuery(since=NOW - timedelta(minutes=4), until=NOW)
    assert not since_then.matches(issued_line)
    assert "never-logged" not in stream.getvalue()


def test_an_offset_until_is_compared_in_utc():
    q = AuditQuery(since=DAY_AGO, until=datetime(2026, 11, 26, 12, 30, tzinfo=timezone(timedelta(hours=1))))
    assert q.matches(line(time="2026-11-26T11:29:00.000Z"))
    assert not q.matches(line(time="2026-11-26T11:31:00.000Z"))


# --- the table -------------------------------------------------------------
def test_table_rows_are_the_line_s_fields_on_one_line_each():
    hostile = line(sub="eve\x1b[31m\nforged row", aud=["a", "b"], exp=1795700000)
    refusal = {k: v for k, v in line(decision="refused", error="ttl_too_long").items() if k not in ("jti", "sub", "aud", "kid", "exp")}
    header, first, second = table_lines([hostile, refusal])
    assert header.split() == ["time", "decision", "profile", "caller", "sub", "aud", "jti", "kid", "exp"]
    assert "eve\\x1b[31m\\nforged row" in first and "\x1b" not in first
    assert "a, b" in first and "2026-11-26T13:33:20Z" in first
    assert "refused: ttl_too_long" in second and "jti-1" not in second
    assert "sha256:abc" not in first + second  # the policy digest is in --json only
    shown = f"{ROLE} (session i-0abc)"  # the role ARN, the session name the caller chose beside it
    assert len({header.index("caller"), first.index(shown), second.index(shown)}) == 1  # aligned columns
