"""The audit line: one valid JSON object per decision, whatever the subject holds; repeated parts reused, never stale."""

from __future__ import annotations

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from jwks_rotator.adapters.lean.audit_log import AUDIT_TYPE, AuditLog
from jwks_rotator.core.issuance.service import MAX_AUDIT_SUB_CHARS, AuditRecord
from jwks_rotator.core.issuance.signer import IssuedToken

CALLER = "arn:aws:sts::123456789012:assumed-role/orders/s-1"
ROLE = "arn:aws:iam::123456789012:role/orders"


def issued(sub: str, aud: str | list[str] = "api") -> AuditRecord:
    token = IssuedToken("header.payload.signature", "kid-1", "ES256", "jti-1", aud, 300, 1_800_000_000)
    return AuditRecord("issued", None, None, CALLER, ROLE, "orders", "d" * 64, token, sub)


def lines(log: AuditLog, *records: AuditRecord) -> list[dict[str, object]]:
    stream = io.StringIO()
    log._stream = stream
    for record in records:
        log.write(record)
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == len(records)
    return [json.loads(line) for line in text.splitlines()]


@given(sub=st.text(max_size=300), aud=st.one_of(st.text(max_size=20), st.lists(st.text(max_size=10), min_size=1, max_size=3)))
def test_any_subject_and_audience_make_one_valid_json_line(sub: str, aud: str | list[str]) -> None:
    [line] = lines(AuditLog(clock=lambda: 1_790_000_000.25), issued(sub, aud))
    assert line["sub"] == (sub if len(sub) <= MAX_AUDIT_SUB_CHARS else sub[: MAX_AUDIT_SUB_CHARS - 1] + "…")
    assert line["aud"] == aud and line["type"] == AUDIT_TYPE
    assert line["time"] == "2026-09-21T14:13:20.250Z"
    assert "header.payload.signature" not in json.dumps(line)


def test_reused_parts_follow_the_record_and_the_function_version() -> None:
    log = AuditLog(clock=lambda: 1_790_000_000.0)
    refused = AuditRecord("refused", "caller_not_allowed", "no_profile", CALLER, ROLE, None, "d" * 64)
    first, second = lines(log, issued("u-1"), refused)
    log.function_version = "7"
    third = lines(log, issued("u-2"))[0]
    assert (first["decision"], first["sub"], first["function_version"]) == ("issued", "u-1", "")
    assert (second["decision"], second["error"], second["reason"]) == ("refused", "caller_not_allowed", "no_profile")
    assert "sub" not in second and "jti" not in second
    assert (third["sub"], third["function_version"]) == ("u-2", "7")


def test_a_long_subject_is_bounded_on_every_line_not_only_the_first() -> None:
    log = AuditLog(clock=lambda: 1_790_000_000.0)
    long_sub, at_bound = "s" * (MAX_AUDIT_SUB_CHARS + 50), "b" * MAX_AUDIT_SUB_CHARS
    subs = [line["sub"] for line in lines(log, issued("u-1"), issued(long_sub), issued(at_bound), issued(long_sub))]
    bounded = long_sub[: MAX_AUDIT_SUB_CHARS - 1] + "…"
    assert subs == ["u-1", bounded, at_bound, bounded]


def test_a_version_set_again_keeps_its_lines_and_a_new_one_changes_them() -> None:
    log = AuditLog(clock=lambda: 1_790_000_000.0)
    log.function_version = "3"
    log.function_version = "3"
    first = lines(log, issued("u-1"))[0]
    log.function_version = "4"
    log.function_version = "3"
    second, third = lines(log, issued("u-1"), issued("u-2"))
    assert first["function_version"] == second["function_version"] == third["function_version"] == "3"
    assert log.function_version == "3"
