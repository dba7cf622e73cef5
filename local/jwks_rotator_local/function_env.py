"""Each in-process function sees its own environment and its own AWS credentials, as in its own Lambda sandbox.

The local functions run in this process (fast starts, one debugger, the soak's concurrency in threads), but
on Lambda each function has an environment and execution-role credentials of its own. Swapping
``os.environ`` around an invocation would race with concurrent invocations, so :func:`install` replaces
``os.environ`` (once per process) with a mapping that reads and writes the active
:class:`FunctionEnvironment`'s variables (a context variable: per thread and per invocation), and makes
``boto3.client``/``boto3.resource`` use that function's own session, so its clients sign with its role.
Outside an active environment both are the process's, unchanged; handler code needs no change.

A narrow, named stand-in for Lambda's process isolation, for the local cloud only. How activation follows
the invoke path and its limits: docs/design/local-cloud.md, "Per-function environments".
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "PYTHONDONTWRITEBYTECODE")
"""Process variables a function also sees (a Lambda runtime has its own PATH, LANG, TZ...)."""
NO_SHARED_CONFIG = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
"""A function never reads the host's ~/.aws files: its credentials are its role's, as on Lambda."""

_active: ContextVar[FunctionEnvironment | None] = ContextVar("jwks_rotator_local_function_environment", default=None)
_install_lock = threading.Lock()


class FunctionEnvironment:
    """One function's variables (its configuration plus what the runtime sets) and its boto3 session."""

    def __init__(self, name: str, variables: Mapping[str, str]) -> None:
        self.name = name
        process = _process_environ()
        base = {key: process[key] for key in PASSED_THROUGH if key in process}
        self.variables: dict[str, str] = {**base, **NO_SHARED_CONFIG, **variables}
        self._session: Any = None
        self._session_lock = threading.Lock()

    @contextlib.contextmanager
    def active(self) -> Iterator[FunctionEnvironment]:
        """Run the block as this function: ``os.environ`` and boto3's default session are its own."""
        install()
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def session(self) -> Any:
        """The function's boto3 session, created (once) inside its environment."""
        with self._session_lock:
            if self._session is None:
                import boto3

                with self.active():
                    self._session = boto3.session.Session()
            return self._session


class _FunctionAwareEnviron(MutableMapping[str, str]):
    """``os.environ`` as the current context sees it: the active function's variables, else the process's."""

    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process

    def _target(self) -> MutableMapping[str, str]:
        environment = _active.get()
        return environment.variables if environment is not None else self.process

    def __getitem__(self, key: str) -> str:
        return self._target()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._target()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._target()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._target()))

    def __len__(self) -> int:
        return len(self._target())

    def copy(self) -> dict[str, str]:
        return dict(self._target())

    def __repr__(self) -> str:
        return f"environ({'function ' + active_name() if _active.get() else 'process'})"

    # os._Environ's extras that callers use
    def __getattr__(self, name: str) -> Any:
        return getattr(self.process, name)


def active_name() -> str:
    environment = _active.get()
    return environment.name if environment is not None else ""


def _process_environ() -> MutableMapping[str, str]:
    current = os.environ
    return current.process if isinstance(current, _FunctionAwareEnviron) else current


def install() -> None:
    """Put the function-aware ``os.environ`` and boto3 session lookup in place (once per process)."""
    if isinstance(os.environ, _FunctionAwareEnviron):
        return
    with _install_lock:
        if isinstance(os.environ, _FunctionAwareEnviron):
            return
        import boto3

        # Replaced, not cleared: outside a function the wrapper is the process environment itself.
        os.environ = _FunctionAwareEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003
        process_default = boto3._get_default_session

        def default_session() -> Any:
            environment = _active.get()
            return environment.session() if environment is not None else process_default()

        boto3._get_default_session = default_session
