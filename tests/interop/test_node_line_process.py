"""The testing kit's line processes (the node verifiers): an answer that never comes ends in an error, not a hang."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jwks_rotator_testkit.verifiers import NodeLineProcess

pytestmark = pytest.mark.interop

SILENT = "import sys\nfor line in sys.stdin:\n    pass\n"  # reads every request, answers none
ECHO = "import sys\nfor line in sys.stdin:\n    print(line.strip(), flush=True)\n"


class PythonLineProcess(NodeLineProcess):
    """The same protocol, spoken by a Python script (so the test needs no node)."""

    answer_timeout = 0.5

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(Path.cwd())

    def command(self, node_dir: Path) -> list[str]:
        return [sys.executable, "-c", self.code]


def test_a_process_that_never_answers_is_killed_and_the_request_fails() -> None:
    process = PythonLineProcess(SILENT)
    try:
        with pytest.raises(RuntimeError, match=r"did not answer within 0\.5 s"):
            process.request({"token": "t"})
        assert process._process.wait(timeout=5) is not None  # killed, not left behind
    finally:
        process.close()


def test_answers_come_back_in_order() -> None:
    process = PythonLineProcess(ECHO)
    try:
        assert [process.request({"n": n})["n"] for n in range(3)] == [0, 1, 2]
    finally:
        process.close()
    assert process._process.returncode == 0
