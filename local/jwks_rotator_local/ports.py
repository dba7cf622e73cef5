"""Which of the ports ``jwks-rotator local`` was asked for are taken, and whether another local stack owns the state file.

Checked before anything starts, so a second ``jwks-rotator local`` (or ``make run``) ends at once with a message
naming the busy port and the option that changes it, and never touches the running stack's state file.
A probe binds with ``SO_REUSEADDR`` as the servers do: a port in ``TIME_WAIT`` is free, a listening one is busy.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping
from typing import Any

from jwks_rotator.core.errors import JwksRotatorError


class LocalStartError(JwksRotatorError):
    """``jwks-rotator local`` cannot start: a port it was asked for is taken, or another stack owns its state file."""

    code = "local_cannot_start"


def port_in_use(host: str, port: int) -> bool:
    """Whether a server already listens on ``host:port`` (port 0 never is: it means any free port)."""
    if port == 0:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_problems(ports: Mapping[str, int], host: str = "127.0.0.1") -> list[str]:
    """One message per option (``--moto-port``: port) whose port is taken or given twice; empty when all are free."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for option, port in ports.items():
        if port and port in seen:
            problems.append(f"{option} {port} is also {seen[port]}'s port: give each its own (0: any free port)")
            continue
        seen[port] = option
        if port_in_use(host, port):
            problems.append(f"port {port} is in use ({option}): pass {option} with another port, or {option} 0 for any free port")
    return problems


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a stale state file names a dead one)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_owner(state: Mapping[str, Any] | None) -> int | None:
    """The id of the live process (not this one) whose state file this is, or None when it is free to take."""
    if not state:
        return None
    pid = state.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
        return pid
    return None


def check_can_start(ports: Mapping[str, int], state: Mapping[str, Any] | None, state_file: str, host: str = "127.0.0.1") -> None:
    """Raise :class:`LocalStartError` naming every busy port with its option, or the stack that owns ``state_file``."""
    problems = port_problems(ports, host)
    owner = running_owner(state)
    if owner is not None:
        problems.append(
            f"a local stack (pid {owner}) is running from this folder and owns {state_file}: stop it, or start this one "
            "in another folder or with --state-file OTHER"
        )
    if problems:
        raise LocalStartError("; ".join(problems))
