"""``jwks-rotator verifiers --stack NAME``: cache settings computed from the settings the stack's rotate function runs with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from jwks_rotator.core.settings import SETTINGS as SETTING_SPECS
from jwks_rotator_cli.main import cli
from jwks_rotator_local.local_stack import LocalStack
from jwks_rotator_testkit.fast import WATCHABLE_PACE, fast_settings

pytestmark = pytest.mark.integration

STACK_NAME = "jwks-rotator-cli-verifiers-test"
# mk/local.mk's `make run` settings (publish-lead 5s, jwks-max-age 2s, clock-skew-leeway 1s).
SETTINGS = fast_settings(WATCHABLE_PACE)
PROCESS_ENV = sorted({spec.env for spec in SETTING_SPECS} | {"AWS_ENDPOINT_URL", "STS_ENDPOINT_URL", "JWKS_ROTATOR_STACK"})


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(SETTINGS, stack_name=STACK_NAME, tick=False) as stack:
        yield stack


def run(tmp_path: Path, *args: str) -> Result:
    """The CLI with no settings in its environment and no state file: what it shows comes from the stack."""
    env: dict[str, str | None] = dict.fromkeys(PROCESS_ENV)
    env["JWKS_ROTATOR_LOCAL_STATE"] = str(tmp_path / "nowhere.json")
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def test_json_answer_follows_the_stacks_settings(stack: LocalStack, tmp_path: Path) -> None:
    result = run(tmp_path, "--endpoint-url", stack.endpoint, "verifiers", "--stack", STACK_NAME, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["source"] == f"stack {STACK_NAME}"
    assert (answer["publish_lead_seconds"], answer["jwks_max_age_seconds"], answer["clock_skew_leeway_seconds"]) == (5.0, 2.0, 1.0)
    assert (answer["margin_seconds"], answer["max_cache_seconds"]) == (1.0, 2.0)
    by_name = {v["verifier"]: v for v in answer["verifiers"]}
    envoy = by_name["Envoy jwt_authn"]
    assert (envoy["recommended_seconds"], envoy["fits"], envoy["revocation_bound_seconds"]) == (2.0, True, 4.0)
    api = by_name["AWS API Gateway JWT authorizer"]
    assert (api["fits"], api["recommended_seconds"], api["minimum_publish_lead_seconds"]) == (False, 7200.0, 8003.0)
    for entry in answer["verifiers"]:
        if entry["fits"]:
            assert entry["recommended_seconds"] + 2.0 + answer["margin_seconds"] <= 5.0


def test_the_global_stack_option_and_the_table(stack: LocalStack, tmp_path: Path) -> None:
    result = run(tmp_path, "--endpoint-url", stack.endpoint, "--stack", STACK_NAME, "verifiers")
    assert result.exit_code == 0, result.output
    assert f"settings (stack {STACK_NAME})  publish-lead=5s jwks-max-age=2s clock-skew-leeway=1s" in result.output
    assert "largest verifier cache 2s" in result.output
    assert "does not fit" in result.output  # API Gateway's fixed 2 h


def test_an_option_beside_the_stack_is_refused_a_what_if_without_it_works_and_a_missing_stack_is_one_line(stack: LocalStack, tmp_path: Path) -> None:
    # With --stack every setting comes from the stack (as for every command): an option that would override it is named.
    refused = run(tmp_path, "--endpoint-url", stack.endpoint, "verifiers", "--stack", STACK_NAME, "--json", "--publish-lead", "10s")
    assert refused.exit_code == 2 and "--publish-lead" in refused.output and f"stack {STACK_NAME}" in refused.output, refused.output
    what_if = run(tmp_path, "verifiers", "--json", "--publish-lead", "10s", "--jwks-max-age", "2s", "--clock-skew-leeway", "1s", "--schedule", "1s")
    assert what_if.exit_code == 0, what_if.output
    assert json.loads(what_if.output)["max_cache_seconds"] == 7.0  # 10 s - 2 s - max(1 s, 1 s, 1 s)
    missing = run(tmp_path, "--endpoint-url", stack.endpoint, "verifiers", "--stack", "no-such-stack")
    assert missing.exit_code == 1 and len(missing.output.strip().splitlines()) == 1, missing.output
