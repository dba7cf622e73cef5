"""Which of the ports ``jwks-rotator local`` was asked for are taken, and whether another local stack owns the state file.

Checked before anything starts, so a second ``jwks-rotator local`` (or ``make run``) ends at once with a message
naming the busy port and the option that changes it, and never touches the running stack's state file.
A probe binds with ``SO_REUSEADDR`` as the servers do: a port in ``TIME_WAIT`` is free, a listening one is busy.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from jwks_rotator.core.errors import JwksRotatorError
from jwks_rotator_cli.local_state import read_state_file


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


def stack_alive(state: Mapping[str, Any]) -> bool:
    """Whether the stack that wrote ``state`` still runs: its process exists and, when the state names it, its moto
    endpoint still listens (after a reboot or a container restart the pid may belong to another process)."""
    pid = state.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    try:
        endpoint = urlsplit(str(state.get("moto_endpoint") or ""))
        host, port = endpoint.hostname, endpoint.port
    except ValueError:
        return True
    if not host or not port:
        return True
    try:
        return port_in_use(host, port)
    except OSError:  # not an address of this machine: the pid decides
        return True


def running_owner(state: Mapping[str, Any] | None) -> int | None:
    """The id of the live process (not this one) whose state file this is, or None when it is free to take."""
    if not state:
        return None
    pid = state.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and stack_alive(state):
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


def lock_file_of(state_file: str) -> Path:
    """The file whose lock a running ``local`` holds beside its state file (the state file itself appears once it serves)."""
    return Path(f"{state_file}.lock")


def claim_state_file(state_file: str) -> IO[str]:
    """Lock ``state_file``'s lock file for this process, before anything starts; keep the returned file open while it runs.

    Of two stacks started at once (every port 0, nothing else to collide on) one gets the lock and the other ends here
    with :class:`LocalStartError`. The kernel drops the lock when its process ends, however it ends: no stale owner.
    """
    path = lock_file_of(state_file)
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise LocalStartError(
            f"a local stack (pid {owner}) is starting or running from this folder and owns {state_file}: stop it, or start "
            "this one in another folder or with --state-file OTHER"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def release_state_file(state_file: str, handle: IO[str]) -> None:
    """Give up the lock :func:`claim_state_file` took, and remove the state file if this process still owns it."""
    if (read_state_file(state_file) or {}).get("pid") == os.getpid():
        Path(state_file).unlink(missing_ok=True)
    lock_file_of(state_file).unlink(missing_ok=True)
    handle.close()
