"""Work a process must do when it becomes one of several copies: after a SnapStart restore, or in a forked child.

Lambda SnapStart (Python 3.12 and later, published versions) takes a snapshot
after INIT and resumes any number of execution environments from it. Its
runtime hooks come from ``snapshot_restore_py``, a module the managed runtime
ships: ``register_before_snapshot`` and ``register_after_restore``. Lambda
sets ``AWS_LAMBDA_INITIALIZATION_TYPE`` to ``snap-start`` for such an INIT,
so the module is imported only then (elsewhere it may not exist).

A forked child is the same situation offline: one initialised process, several
copies. :func:`os.register_at_fork` (``after_in_child``) is the standard
library's hook for it, so the same "after restore" work runs there too; the
tests use it to simulate restores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

INITIALIZATION_TYPE_ENV = "AWS_LAMBDA_INITIALIZATION_TYPE"
SNAP_START = "snap-start"


def register_copy_hooks(before_snapshot: Callable[[], None], after_restore: Callable[[], None],
                        environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """Run ``before_snapshot`` before a SnapStart snapshot, ``after_restore`` after a restore and in forked children.

    Returns the mechanisms that took the hooks (``snapstart`` and ``fork``, or ``fork`` alone: also under SnapStart
    when ``snapshot_restore_py`` cannot be imported, which never stops INIT).
    """
    taken: list[str] = []
    if environ.get(INITIALIZATION_TYPE_ENV) == SNAP_START:
        try:
            from snapshot_restore_py import (  # type: ignore[import-not-found]  # the managed runtime's own module
                register_after_restore,
                register_before_snapshot,
            )
        except ImportError:  # not a managed runtime: the caller logs it; INIT holds no key either way
            pass
        else:
            register_before_snapshot(before_snapshot)
            register_after_restore(after_restore)
            taken.append("snapstart")
    os.register_at_fork(after_in_child=after_restore)
    taken.append("fork")
    return tuple(taken)
