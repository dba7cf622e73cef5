"""``jwks-rotator verifiers`` without a stack: the settings given as options, the rule's numbers in the JSON answer."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from jwks_rotator.core.settings import SETTINGS
from jwks_rotator_cli.main import cli


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    env: dict[str, str | None] = dict.fromkeys([spec.env for spec in SETTINGS] + ["AWS_ENDPOINT_URL", "JWKS_ROTATOR_STACK"])
    env["JWKS_ROTATOR_LOCAL_STATE"] = str(tmp_path / "nowhere.json")
    env["COLUMNS"] = "250"  # rich wraps table cells at 80 columns otherwise
    result = CliRunner().invoke(cli, ["verifiers", *args], catch_exceptions=False, env=env)
    return result.exit_code, result.output


def test_template_defaults_without_a_stack(tmp_path: Path) -> None:
    code, output = run(tmp_path, "--json")
    assert code == 0, output
    answer = json.loads(output)
    assert answer["source"] == "options and defaults"
    assert (answer["publish_lead_seconds"], answer["jwks_max_age_seconds"], answer["margin_seconds"]) == (172_800, 3_600, 17_280)
    assert all(v["fits"] for v in answer["verifiers"])
    assert {v["verifier"]: v["recommended_seconds"] for v in answer["verifiers"]}["Envoy jwt_authn"] == 600


def test_a_lead_too_short_for_api_gateway_says_what_it_needs(tmp_path: Path) -> None:
    code, output = run(tmp_path, "--publish-lead", "1h", "--jwks-max-age", "5m", "--rotation-period", "1d", "--schedule", "5m")
    assert code == 0, output
    assert "does not fit" in output and "publish-lead >= 2h18m54s" in output  # (2 h + 5 min) / 0.9 = 2 h 18 min 53.3 s, rounded up


def test_invalid_settings_exit_2(tmp_path: Path) -> None:
    code, output = run(tmp_path, "--publish-lead", "1h", "--jwks-max-age", "1h", "--rotation-period", "1d")
    assert code == 2 and "jwks-max-age" in output


def test_durations_with_fractions_are_shown_exactly_never_rounded(tmp_path: Path) -> None:
    # publish-lead 1.2345678d = 106666.65792 s: margin 10666.665792 s, largest cache 92399.992128 s (not 92400 s: a cache
    # set to the rounded value would break the rule it is printed for).
    code, output = run(tmp_path, "--publish-lead", "1.2345678d", "--jwks-max-age", "1h")
    assert code == 0, output
    assert "margin (2h57m46.665792s) <= publish-lead (1d5h37m46.65792s): largest verifier cache 1d1h39m59.992128s" in output, output
