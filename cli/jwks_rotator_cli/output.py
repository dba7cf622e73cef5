"""How the CLI prints: a rich console, short durations, lifecycle changes and run reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console

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


def print_summary(summary: dict[str, Any], *, nothing: str) -> None:
    """The changes and publications the rotate function reported, then the active kid; ``nothing`` when it did nothing."""
    out = console()
    changes = [c for c in summary.get("changes", []) if isinstance(c, dict)]
    for change in changes:
        out.print(change_line(str(change.get("change")), str(change.get("kid")), str(change.get("reason"))))
    published = [paths for paths in summary.get("published", []) if paths]
    for paths in published:
        out.print(f"published {', '.join(map(str, paths))}")
    if not changes and not published:
        out.print(nothing)
    out.print(f"active kid: {summary.get('active_kid') or 'none'}")
    if summary.get("converged") is False:
        out.print("[yellow]did not converge (concurrent writers); run again[/yellow]")
