"""``jwks-rotator audit``: who minted a token, what a caller got, who revoked a kid, from the audit lines in CloudWatch Logs.

The sign function's lines by default; ``--operation`` or ``--kid`` reads the
rotate function's (one line per operation: who ran it, which kid).

Reads the log group with FilterLogEvents (every page, between ``--since`` and
``--until``), asks the server for the matching lines with a JSON filter
pattern, and checks every line again before showing it (a server may ignore
the pattern: moto returns every event). Shows only the audit lines' own fields.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
from botocore.exceptions import ClientError

from .app import fail
from .audit_query import DECISIONS, OPERATIONS, AuditQuery, function_log_group, parse_when, select
from .context import CliContext, refuse_stack_options
from .local_state import ROTATE_FUNCTION, SIGN_FUNCTION

_COLUMNS = ("time", "decision", "profile", "caller", "sub", "aud", "jti", "kid", "exp")
_OPERATION_COLUMNS = ("time", "decision", "operation", "kid", "accept_restore", "role", "caller")
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def log_events(client: Any, group: str, query: AuditQuery) -> Iterator[dict[str, Any]]:
    """Every event FilterLogEvents returns for the query, page after page."""
    start, end = query.time_range_ms()
    request: dict[str, Any] = {"logGroupName": group, "startTime": start, "endTime": end, "filterPattern": query.filter_pattern()}
    seen: set[str] = set()
    while True:
        page = client.filter_log_events(**request)
        yield from page.get("events", [])
        token = page.get("nextToken")
        if not token or token in seen:
            return
        seen.add(token)
        request["nextToken"] = token


def caller_cell(record: dict[str, Any]) -> Any:
    """The caller as its IAM role ARN with the session name beside it (a session name is the caller's own choice)."""
    role, caller = record.get("role"), record.get("caller")
    if isinstance(role, str) and isinstance(caller, str) and ":assumed-role/" in caller:
        return f"{role} (session {caller.rsplit('/', 1)[-1]})"
    return caller


def cell(name: str, value: Any) -> str:
    """One field as plain text on one line (control characters escaped); ``exp`` as a UTC time."""
    if value is None:
        return ""
    if name == "exp" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def table_lines(records: list[dict[str, Any]]) -> list[str]:
    """A header and one row per decision, columns as wide as their widest value (never cut, never wrapped)."""
    columns = _OPERATION_COLUMNS if records and all(record.get("function") == "rotate" for record in records) else _COLUMNS
    rows = [list(columns)]
    for record in records:
        row = [cell(name, caller_cell(record) if name == "caller" else record.get(name)) for name in columns]
        if record.get("decision") in ("refused", "failed") and record.get("error"):
            row[columns.index("decision")] = cell("decision", f"{record['decision']}: {record['error']}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in rows]


@click.command()
@click.option("--jti", default=None, help="The token id: who minted it.")
@click.option("--caller", default=None, help="An IAM role ARN (matches the caller's role) or an STS ARN (matches the caller exactly).")
@click.option("--sub", default=None, help="The token's subject.")
@click.option("--decision", type=click.Choice(DECISIONS), default=None, help="Only tokens issued, only refusals, or (operations) only those performed or failed.")
@click.option("--operation", type=click.Choice(OPERATIONS), default=None, help="Only this rotate operation (reads the rotate function's lines).")
@click.option("--kid", default=None, help="Only lines naming this kid: who revoked it (reads the rotate function's lines).")
@click.option("--since", default="24h", show_default=True, help="Start: an ISO 8601 time (UTC unless it says) or a duration before now (2h, 30m, 7d).")
@click.option("--until", default=None, help="End, like --since [default: now].")
@click.option(
    "--log-group",
    default=None,
    envvar="AUDIT_LOG_GROUP",
    help="Log group to read [default: --stack's AuditLogGroupName output (with --operation or --kid, OperationsLogGroupName), else /aws/lambda/FUNCTION].",
)
@click.option(
    "--function-name",
    default=None,
    help=f"The function (name or ARN) whose log group is read [default: SIGN_FUNCTION_NAME or {SIGN_FUNCTION}; with --operation or --kid, ROTATE_FUNCTION_NAME or {ROTATE_FUNCTION}].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON audit line per match instead of a table.")
@click.pass_obj
def audit(
    obj: CliContext,
    /,
    jti: str | None,
    caller: str | None,
    sub: str | None,
    decision: str | None,
    operation: str | None,
    kid: str | None,
    since: str,
    until: str | None,
    log_group: str | None,
    function_name: str | None,
    as_json: bool,
) -> None:
    """Decisions from the audit lines: who minted a token, what a caller got since when, who revoked a kid (--kid)."""
    refuse_stack_options(obj, "log_group", "function_name")
    now = datetime.now(UTC)
    try:
        start = parse_when(since, now)
    except ValueError as exc:
        fail(f"--since: {exc}", 2)
    try:
        end = parse_when(until, now) if until else now
    except ValueError as exc:
        fail(f"--until: {exc}", 2)
    try:
        query = AuditQuery(since=start, until=end, jti=jti, caller=caller, sub=sub, decision=decision, operation=operation, kid=kid)
    except ValueError as exc:
        fail(str(exc), 2)
    rotate = operation is not None or kid is not None
    if function_name is None:
        function_name = os.environ.get("ROTATE_FUNCTION_NAME" if rotate else "SIGN_FUNCTION_NAME") or (ROTATE_FUNCTION if rotate else SIGN_FUNCTION)
    state = obj.local_state() or {}
    stack = obj.stack()
    stack_group = None if stack is None else stack.operations_log_group_name if rotate else stack.audit_log_group_name
    group = log_group or stack_group or dict(state.get("log_groups") or {}).get(function_name) or function_log_group(function_name)
    try:
        records = select(log_events(obj.client("logs"), group, query), query)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            fail(f"log group {group} not found (no decision logged yet, or pass --log-group)", 1)
        raise
    if as_json:
        for record in records:
            click.echo(_encode(record))
        return
    if not records:
        click.echo(f"no matching decisions in {group} between {start:%Y-%m-%dT%H:%M:%SZ} and {end:%Y-%m-%dT%H:%M:%SZ}", err=True)
        return
    for line in table_lines(records):
        click.echo(line)
