"""``jwks-rotator audit``: who minted a token, what a caller got, from the sign function's audit lines in CloudWatch Logs.

Reads the log group with FilterLogEvents (every page, between ``--since`` and
``--until``), asks the server for the matching lines with a JSON filter
pattern, and checks every line again before showing it (a server may ignore
the pattern: moto returns every event). Shows only the audit lines' own fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
from botocore.exceptions import ClientError

from .app import fail
from .audit_query import DECISIONS, AuditQuery, function_log_group, parse_when, select
from .context import CliContext
from .local_state import SIGN_FUNCTION

_COLUMNS = ("time", "decision", "profile", "caller", "sub", "aud", "jti", "kid", "exp")
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
    rows = [list(_COLUMNS)]
    for record in records:
        row = [cell(name, record.get(name)) for name in _COLUMNS]
        if record.get("decision") == "refused" and record.get("error"):
            row[_COLUMNS.index("decision")] = cell("decision", f"refused: {record['error']}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in rows]


@click.command()
@click.option("--jti", default=None, help="The token id: who minted it.")
@click.option("--caller", default=None, help="An IAM role ARN (matches the caller's role) or an STS ARN (matches the caller exactly).")
@click.option("--sub", default=None, help="The token's subject.")
@click.option("--decision", type=click.Choice(DECISIONS), default=None, help="Only tokens issued, or only refusals.")
@click.option("--since", default="24h", show_default=True, help="Start: an ISO 8601 time (UTC unless it says) or a duration before now (2h, 30m, 7d).")
@click.option("--until", default=None, help="End, like --since [default: now].")
@click.option(
    "--log-group",
    default=None,
    envvar="AUDIT_LOG_GROUP",
    help="Log group to read [default: --stack's AuditLogGroupName output, else /aws/lambda/FUNCTION].",
)
@click.option("--function-name", default=SIGN_FUNCTION, show_default=True, envvar="SIGN_FUNCTION_NAME", help="The sign function (name or ARN) whose log group is read.")
@click.option("--json", "as_json", is_flag=True, help="One JSON audit line per match instead of a table.")
@click.pass_obj
def audit(
    obj: CliContext,
    /,
    jti: str | None,
    caller: str | None,
    sub: str | None,
    decision: str | None,
    since: str,
    until: str | None,
    log_group: str | None,
    function_name: str,
    as_json: bool,
) -> None:
    """The sign function's decisions from its audit lines: who minted a token, what a caller got since when."""
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
        query = AuditQuery(since=start, until=end, jti=jti, caller=caller, sub=sub, decision=decision)
    except ValueError as exc:
        fail(str(exc), 2)
    state = obj.local_state() or {}
    stack = obj.stack()
    stack_group = stack.audit_log_group_name if stack is not None else None
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
