"""Shared fixtures: a moto server on loopback and the AWS resources the template creates.

Integration and interop tests talk to the moto server over HTTP through
boto3's ``endpoint_url``, exactly as they would talk to AWS. The fixtures are
thin wrappers over the testing kit (``jwks_rotator_testkit``).

Every local stack a test session starts records its functions' AWS calls (``JWKS_ROTATOR_RECORD_CALLS``)
into ``.artifacts/recorded-calls/``, emptied when the session starts; ``make test`` then decides them all
(``tests/privilege/matrix.py --recorded``). A caller that sets ``JWKS_ROTATOR_RECORD_CALLS`` itself (a
directory, or empty for none) keeps its choice and its directory. Each stack writes its own file
(stack name, process id, sequence), so pytest-xdist workers never collide.

Tiers: ``tests/unit`` is the fast tier; every test outside it is marked ``slow`` here (so ``-m "not slow"``
selects the unit tests without naming directories), as is a unit test marked ``slow`` in its own module. The
Hypothesis profile comes from ``HYPOTHESIS_PROFILE`` (``jwks_rotator_testkit.hypothesis_profiles``: ``ci``,
``dev``, ``check``). docs/testing.md says how the make targets use them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from jwks_rotator_local.call_recording import RECORD_ENV
from jwks_rotator_local.functions import FUNCTIONS_DIR, mark_local
from jwks_rotator_testkit.deploy import AwsResources, create_test_resources
from jwks_rotator_testkit.hypothesis_profiles import load_profile_from_environment
from jwks_rotator_testkit.moto import moto_server, set_default_credentials

RECORDED_CALLS = Path(__file__).resolve().parents[1] / ".artifacts" / "recorded-calls"
FAST_TIER = Path(__file__).resolve().parent / "unit"
HYPOTHESIS_PROFILE = load_profile_from_environment()


def pytest_configure(config: pytest.Config) -> None:
    """The functions marked as the local stack's (the tests' STS stand-ins and policy files are local), then a fresh
    recording directory for the session (once, in the controller: xdist workers inherit the variable)."""
    for function in ("sign", "rotate"):
        mark_local(FUNCTIONS_DIR / function)
    if hasattr(config, "workerinput") or RECORD_ENV in os.environ:
        return
    shutil.rmtree(RECORDED_CALLS, ignore_errors=True)
    RECORDED_CALLS.mkdir(parents=True)
    os.environ[RECORD_ENV] = str(RECORDED_CALLS)


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis profile: {HYPOTHESIS_PROFILE}"


# The tiers whose tests take longest, run first (longest first: under pytest-xdist the first tests go to the workers
# one each, so a long test never starts last and holds the session's end). Then the rest in collection order.
LONG_FIRST = ("soak", "privilege")


def _start_order(item: pytest.Item) -> int:
    if item.path.is_relative_to(FAST_TIER):
        return 0 if item.get_closest_marker("slow") else 2  # a unit test marked slow in its module is a long one
    tier = item.path.relative_to(FAST_TIER.parent).parts[0]
    return 1 if tier in LONG_FIRST else 2


def _shared_setup_group(item: pytest.Item) -> str | None:
    """The module (and parameters) of the module-scoped fixtures ``item`` uses, or None when it uses none.

    Under ``--dist loadgroup``, tests of one group run on one worker: a module's local stack or deployment is set up
    once rather than once per worker (the privilege lifecycle ran four times on four workers before). Tests with
    only function- or session-scoped fixtures spread freely.
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    shared = [name for name, defs in info.name2fixturedefs.items() if defs and defs[-1].scope in ("module", "package", "class")]
    if not shared:
        return None
    callspec = getattr(item, "callspec", None)
    params = sorted(f"{name}={callspec.params[name]}" for name in shared if callspec is not None and name in callspec.params)
    return "::".join([str(item.path.relative_to(FAST_TIER.parent)), *params])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test outside the fast tier (tests/unit); start the long ones first; group shared setups."""
    items.sort(key=_start_order)  # stable: each group keeps its collection order
    for item in items:
        if not item.path.is_relative_to(FAST_TIER):
            item.add_marker(pytest.mark.slow)
        group = _shared_setup_group(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server in server mode on 127.0.0.1 (one per test session)."""
    set_default_credentials()
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_resources(moto_endpoint: str) -> AwsResources:
    """A fresh KMS-encrypted keyring secret, bucket and CloudFront distribution."""
    return create_test_resources(moto_endpoint)
