"""One initialised sign process, several copies of it: SnapStart restores and processes sharing /tmp, simulated by fork.

SnapStart resumes many execution environments from one snapshot taken after INIT; Lambda Managed Instances run
several processes that share ``/tmp``. Here one process runs the handler's INIT (settings, policy, verifier, signer,
TLS context: no key read) and forks children; each child runs the after-restore work as a restored copy would
(``os.register_at_fork``; SnapStart's ``register_after_restore`` takes the same function) and issues tokens. The
STS stand-in runs in the parent, so its replay count sees every copy; each child reports what it read and issued
through a pipe. ``TMPDIR`` points every child at one shared directory, which must stay empty.
"""

from __future__ import annotations

import gc
import io
import json
import math
import os
import random
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest

from jwks_rotator.core.issuance.signer import SigningKey
from jwks_rotator_testkit.callers import SIGN_FUNCTION_NAME, LambdaContext, fake_sts, policy_yaml, role_caller
from tests.sign_support import ISSUER, FakeSecrets, active_key, keyring_json, load_sign_app, public_key

KEY = active_key("ES256")
ORDERS = role_caller("orders-service", session="copies")
POLICY = policy_yaml({"name": "orders", "callers": ["arn:aws:iam::123456789012:role/orders-service"], "audiences": ["orders-api"], "subjects": [".+"]})
COPIES = 4
TOKENS_PER_COPY = 5

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="copies are simulated with os.fork")


def signing_keys_in_memory() -> int:
    return sum(1 for thing in gc.get_objects() if isinstance(thing, SigningKey))


@pytest.fixture
def initialised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A handler module after INIT, against an STS stand-in and a keyring secret that counts its reads."""
    client = FakeSecrets(keyring_json(KEY))
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    policy = tmp_path / "policy.json"
    policy.write_text(POLICY)
    with fake_sts() as sts:
        sts.register(ORDERS)
        for name, value in {"KEYRING_SECRET_ID": "keyring", "ISSUER": ISSUER, "ALLOWED_AUDIENCES": "orders-api", "AWS_REGION": "us-east-1",
                            "STS_ENDPOINT_URL": sts.url, "ISSUANCE_POLICY_FILE": str(policy)}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raising=False)
        app = load_sign_app("sign_app_copies")
        app.audit._stream = io.StringIO()
        app.logger.stream = io.StringIO()
        app.metrics.stream = io.StringIO()
        app.secrets, app.sts = client, sts
        yield app


def run_copies(app: Any, event: dict[str, Any], shared_tmp: Path) -> list[dict[str, Any]]:
    """Fork COPIES children; each reports what its caches held after the restore, what it read and what it issued."""
    children: list[tuple[int, int]] = []
    for _ in range(COPIES):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the copy
            status = 1
            try:
                os.close(read_end)
                os.environ["TMPDIR"] = str(shared_tmp)
                tempfile.tempdir = None
                service = app._service
                report: dict[str, Any] = {
                    "held_key_at_restore": service.signer.cache.holds_key,
                    "cached_proofs_at_restore": service.verifier.cached_proofs,
                    "reads_before": app.secrets.calls,
                    "random": random.random(),
                }
                answers = [app.handler(event, LambdaContext()) for _ in range(TOKENS_PER_COPY)]
                report.update(answers=answers, reads_after=app.secrets.calls, revocation_reads=app.secrets.parameter_calls)
                with os.fdopen(write_end, "w") as out:
                    json.dump(report, out)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        children.append((pid, read_end))
    reports = []
    for pid, read_end in children:
        with os.fdopen(read_end) as pipe:
            text = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        reports.append(json.loads(text))
    return reports


def test_copies_of_an_initialised_process_read_keys_after_the_restore_and_never_repeat_a_jti(initialised: Any, tmp_path: Path) -> None:
    app = initialised
    assert app._service is not None  # INIT built the service
    assert app.secrets.calls == 0 and app.secrets.parameter_calls == 0 and app.sts.replays == 0  # and read no key, replayed nothing
    assert not app._service.signer.cache.holds_key and signing_keys_in_memory() == 0  # nothing secret to snapshot
    random.seed(7)  # state a snapshot would carry: every copy must move off it
    shared_tmp = tmp_path / "shared-tmp"
    shared_tmp.mkdir()
    event = {"proof": ORDERS.proof(sts_endpoint_url=app.sts.url, signer=SIGN_FUNCTION_NAME), "sub": "user-1", "aud": "orders-api"}

    reports = run_copies(app, event, shared_tmp)

    jtis = []
    for report in reports:
        assert report["held_key_at_restore"] is False and report["cached_proofs_at_restore"] == 0 and report["reads_before"] == 0
        assert report["reads_after"] == 1 and report["revocation_reads"] == 1  # each copy read the keys itself, once
        for answer in report["answers"]:
            claims = jwt.decode(answer["token"], public_key(KEY), algorithms=["ES256"], audience="orders-api", issuer=ISSUER)
            jtis.append(claims["jti"])
    assert len(jtis) == len(set(jtis)) == COPIES * TOKENS_PER_COPY  # no jti repeats across the copies
    assert len({report["random"] for report in reports}) == COPIES  # random's state differs per copy (fork reseeds it too)
    assert app.sts.replays == COPIES  # each copy replayed the proof once: no copy used another's verified proof
    assert list(shared_tmp.iterdir()) == []  # nothing written to the shared /tmp
    assert app.secrets.calls == 0 and signing_keys_in_memory() == 0  # the parent still never read a key


def test_copies_of_a_warm_process_drop_its_keys_proofs_and_connections(initialised: Any, tmp_path: Path) -> None:
    app = initialised
    event = {"proof": ORDERS.proof(sts_endpoint_url=app.sts.url, signer=SIGN_FUNCTION_NAME), "sub": "user-2", "aud": "orders-api"}
    assert "token" in app.handler(event, LambdaContext())  # the parent is warm: key cached, proof verified, connection kept
    assert app._service.signer.cache.holds_key and app._service.verifier.cached_proofs > 0
    assert app.secrets.calls == 1 and app.sts.replays == 1
    shared_tmp = tmp_path / "shared-tmp"
    shared_tmp.mkdir()

    reports = run_copies(app, event, shared_tmp)

    for report in reports:
        assert report["held_key_at_restore"] is False and report["cached_proofs_at_restore"] == 0
        assert report["reads_after"] - report["reads_before"] == 1  # read afresh, not the parent's cached key
        assert all("token" in answer for answer in report["answers"])
    assert app.sts.replays == 1 + COPIES  # over new connections: the parent's kept one was dropped, unused, in each copy
    assert list(shared_tmp.iterdir()) == []
    assert "token" in app.handler(event, LambdaContext()) and app.sts.replays == 1 + COPIES  # the parent's own caches are intact


def test_under_snapstart_the_hooks_go_to_the_runtime_and_the_restore_drops_what_copies_must_not_share(
    initialised: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered: dict[str, list[Any]] = {"before": [], "after": []}
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_before_snapshot = registered["before"].append  # type: ignore[attr-defined]
    runtime.register_after_restore = registered["after"].append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)  # the module the managed runtime ships
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    app = load_sign_app("sign_app_snapstart")
    app.audit._stream = io.StringIO()
    assert app.COPY_HOOKS == ("snapstart", "fork")
    [before], [after] = registered["before"], registered["after"]
    before()  # the snapshot is taken after INIT: no key was read, none is held
    assert initialised.secrets.calls == 0 and not app._service.signer.cache.holds_key

    event = {"proof": ORDERS.proof(sts_endpoint_url=initialised.sts.url, signer=SIGN_FUNCTION_NAME), "sub": "user-3", "aud": "orders-api"}
    assert "token" in app.handler(event, LambdaContext())
    assert app._service.signer.cache.holds_key and app._service.verifier.cached_proofs > 0
    random.seed(7)
    expected = random.random()
    random.seed(7)
    after()  # a restore
    assert random.random() != expected  # the random module's state was replaced
    assert not app._service.signer.cache.holds_key and app._service.verifier.cached_proofs == 0 and app._last_flush == -math.inf
    replays, reads = initialised.sts.replays, initialised.secrets.calls
    assert "token" in app.handler(event, LambdaContext())
    assert (initialised.sts.replays, initialised.secrets.calls) == (replays + 1, reads + 1)  # proof and keys read afresh


def test_on_demand_the_hooks_are_only_the_fork_ones(initialised: Any) -> None:
    assert initialised.COPY_HOOKS == ("fork",)  # no snapshot_restore_py import outside SnapStart


def test_under_snapstart_without_the_runtime_module_init_still_completes(initialised: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # an import of it raises ImportError
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    app = load_sign_app("sign_app_snapstart_no_module")
    app.audit._stream = io.StringIO()
    assert app.COPY_HOOKS == ("fork",) and app._service is not None
    event = {"proof": ORDERS.proof(sts_endpoint_url=initialised.sts.url, signer=SIGN_FUNCTION_NAME), "sub": "user-4", "aud": "orders-api"}
    assert "token" in app.handler(event, LambdaContext())


def test_a_copy_forked_while_another_thread_writes_or_counts_can_still_write_and_count(initialised: Any) -> None:
    # An invocation on another thread may hold the output, counts or TLS-context lock at the moment of the fork; the
    # copy has no such thread, so a lock copied held would stop its every log line, count and first HTTPS call for good.
    import threading
    import time

    from jwks_rotator.adapters.lean import http, telemetry

    app = initialised
    locks = {"output": telemetry.OUTPUT_LOCK, "counts": app._counts_lock, "tls": http._LOCK}
    for name, lock in locks.items():
        taken = threading.Event()

        def hold(lock: Any = lock, taken: threading.Event = taken) -> None:
            with lock:
                taken.set()
                time.sleep(0.3)

        holder = threading.Thread(target=hold)
        holder.start()
        taken.wait()
        pid = os.fork()
        if pid == 0:  # the copy: each lock it will use must be free (the parent's holder thread does not exist here)
            status = 1
            try:
                free = all(lock.acquire(timeout=2) for lock in (telemetry.OUTPUT_LOCK, app._counts_lock, http._LOCK))
                status = 0 if free else 3
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        holder.join()
        assert os.waitstatus_to_exitcode(status) == 0, f"the {name} lock was copied held"
