"""A busy port is named with the option that changes it, and a live stack's state file is never taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from jwks_rotator_cli.local_state import STATE_FORMAT
from jwks_rotator_local.local_stack import LocalStackError, start_moto
from jwks_rotator_local.ports import (
    LocalStartError,
    check_can_start,
    claim_state_file,
    port_in_use,
    port_problems,
    release_state_file,
    running_owner,
)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_listening_port_is_busy_and_port_0_never_is(busy_port: int):
    assert port_in_use("127.0.0.1", busy_port)
    assert not port_in_use("127.0.0.1", 0)


def test_the_message_names_the_port_and_its_option(busy_port: int):
    problems = port_problems({"--port": 0, "--moto-port": busy_port, "--sts-port": 0})
    assert problems == [f"port {busy_port} is in use (--moto-port): pass --moto-port with another port, or --moto-port 0 for any free port"]


def test_every_busy_port_is_named(busy_port: int):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        second = other.getsockname()[1]
        with pytest.raises(LocalStartError) as caught:
            check_can_start({"--lambda-port": busy_port, "--aws-port": second}, None, "state.json")
    assert f"port {busy_port} is in use (--lambda-port)" in caught.value.message
    assert f"port {second} is in use (--aws-port)" in caught.value.message


def test_one_port_for_two_options_is_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert port_problems({"--port": free, "--aws-port": free}) == [f"--aws-port {free} is also --port's port: give each its own (0: any free port)"]


def test_a_state_file_of_a_live_process_is_owned_and_a_dead_ones_is_free():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert running_owner({"pid": sleeper.pid}) == sleeper.pid
        with pytest.raises(LocalStartError, match=f"pid {sleeper.pid}.*owns state.json"):
            check_can_start({}, {"pid": sleeper.pid}, "state.json")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert running_owner({"pid": sleeper.pid}) is None
    assert running_owner({"pid": os.getpid()}) is None  # this process's own file
    assert running_owner(None) is None


def test_moto_on_a_busy_port_raises_instead_of_waiting_forever(busy_port: int):
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            start_moto("127.0.0.1", busy_port)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=start, daemon=True)
    worker.start()
    worker.join(30)  # liveness, not speed: moto's own start() never returns on a busy port
    assert not worker.is_alive()
    assert isinstance(outcome[0], LocalStackError)
    assert f"moto cannot listen on 127.0.0.1:{busy_port}" in outcome[0].message and "--moto-port 0" in outcome[0].message


@pytest.mark.parametrize("option", ["--port", "--moto-port", "--lambda-port", "--aws-port", "--sts-port"])
@pytest.mark.parametrize("value", ["70000", "-1"])
def test_a_port_out_of_range_is_named_with_its_option(option, value, tmp_path):
    from click.testing import CliRunner

    from jwks_rotator_cli.main import cli

    result = CliRunner().invoke(cli, ["--state-file", str(tmp_path / "state.json"), "local", option, value, "--duration", "0"])
    assert result.exit_code == 2, result.output
    assert option in result.stderr and "0<=x<=65535" in result.stderr
    assert not (tmp_path / "state.json").exists()


def test_a_state_file_whose_pid_lives_on_in_another_process_is_free(busy_port: int):
    """After a reboot or a container restart the pid is some other process: a stack's moto endpoint listens, theirs does not."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert running_owner({"pid": sleeper.pid, "moto_endpoint": f"http://127.0.0.1:{free}"}) is None
        assert running_owner({"pid": sleeper.pid, "moto_endpoint": f"http://127.0.0.1:{busy_port}"}) == sleeper.pid
        assert running_owner({"pid": sleeper.pid, "moto_endpoint": "not a url"}) == sleeper.pid  # unknown: the pid decides
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_state_file_is_claimed_before_the_stack_starts(tmp_path):
    """Two stacks started at once with every port 0: the first to claim the state file owns it, the second ends at once."""
    path = tmp_path / "state.json"
    claimer = subprocess.Popen(
        [sys.executable, "-c", f"import time; from jwks_rotator_local.ports import claim_state_file; h = claim_state_file({str(path)!r}); time.sleep(30)"]
    )
    try:
        for _ in range(300):
            if (tmp_path / "state.json.lock").exists() and (tmp_path / "state.json.lock").read_text().strip():
                break
            time.sleep(0.1)
        with pytest.raises(LocalStartError, match=f"pid {claimer.pid}"):
            claim_state_file(str(path))
    finally:
        claimer.kill()  # however it ends, its lock ends with it
        claimer.wait()
    claim = claim_state_file(str(path))
    path.write_text(json.dumps({"format": STATE_FORMAT, "pid": os.getpid()}))
    release_state_file(str(path), claim)
    assert list(tmp_path.iterdir()) == []
