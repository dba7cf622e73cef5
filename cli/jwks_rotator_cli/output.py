"""How the CLI prints: a rich console, short durations, lifecycle changes and run reports."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console

from jwks_rotator.core.rotation import RunReport

_CHANGE_STYLES = {
    "created": "cyan",
    "published": "blue",
    "activated": "bold green",
    "retired": "yellow",
    "deleted": "magenta",
    "revoked": "bold red",
}


def console(*, stderr: bool = False) -> Console:
    """A rich console; wide when not a terminal so kids are never cut."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, emoji=False, width=None if probe.is_terminal else 200)


def human(seconds: float) -> str:
    """``90`` -> ``1m30s``; whole seconds, largest two units."""
    total = round(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts[:2])


def relative(when: datetime, now: datetime) -> str:
    """``in 5m`` or ``3s ago``."""
    delta = (when - now).total_seconds()
    return f"in {human(delta)}" if delta > 0 else f"{human(delta)} ago"


def change_line(kind: str, kid: str, reason: str, at: datetime | None = None) -> str:
    """One lifecycle change as rich markup."""
    stamp = (at or datetime.now()).strftime("%H:%M:%S")
    style = _CHANGE_STYLES.get(kind, "white")
    return f"[dim]{stamp}[/dim]  [{style}]{kind:<9}[/{style}] {kid}  [dim]({reason})[/dim]"


def print_report(report: RunReport, *, nothing: str) -> None:
    """The changes and publications of one rotation run, then the active kid; ``nothing`` when it did nothing."""
    out = console()
    for change in report.changes:
        out.print(change_line(change.kind, change.kid, change.reason))
    for publication in report.publications:
        if publication.uploaded:
            out.print(f"published {', '.join(publication.uploaded)}" + (f" (invalidation {publication.invalidation_id})" if publication.invalidation_id else ""))
        elif publication.invalidation_id:
            out.print(f"invalidated the documents again (invalidation {publication.invalidation_id})")
    if not report.changes and not report.publications:
        out.print(nothing)
    active = report.keyring.active
    out.print(f"active kid: {active.kid if active else 'none'}")
    if not report.converged:
        out.print("[yellow]did not converge (concurrent writers); run again[/yellow]")
