"""``jwks-rotator --region R promote R``: the region check, the confirmation, the old primary's step-down first, the
promote in R's own rotate function, and one line per outcome with the exit codes of the other operations."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from jwks_rotator_cli import operate
from jwks_rotator_cli.main import cli

A, B = "us-east-1", "eu-west-1"
PROMOTED = {"operation": "promote", "region": B, "old_primary": A, "old_primary_state": "unreachable", "already_primary": False,
            "generation": 1_800_000_000, "publish_error": None, "changes": [], "published": [["jwks.json"]], "active_kid": "kid-1"}

CHECKED = {"operation": "promote", "region": B, "old_primary": A, "old_primary_state": "answers", "already_primary": False,
           "check": True, "would": "promote once the old primary has stepped down (it answers and still writes)"}
CHECK = (B, "rotate-fn", {"operation": "promote", "region": B, "check": True})


class Calls:
    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.made: list[tuple[str, str, dict[str, Any]]] = []  # (region of the client, function, event)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    recorded = Calls({"promote": PROMOTED, "promote-check": CHECKED, "step-down": {"operation": "step-down", "old_primary": A, "new_primary": B,
                                                         "generation": 7, "already": False}})

    class FakeClient:
        def __init__(self, region: str, function_name: str) -> None:
            self.region, self.function_name = region, function_name

        def operate(self, operation: str, **fields: Any) -> dict[str, Any]:
            recorded.made.append((self.region, self.function_name, {"operation": operation, **fields}))
            return recorded.answers[operation + ("-check" if fields.get("check") else "")]

        def step_down(self, region: str) -> dict[str, Any]:
            return self.operate("step-down", region=region)

    def proving(obj: Any, _class: Any, function_name: str, **_: Any) -> FakeClient:
        return FakeClient(obj.region_name(), function_name)

    monkeypatch.setattr(operate, "proving_client", proving)
    monkeypatch.setattr(operate, "_old_primary", lambda obj, options: A)
    return recorded


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, ["--region", B, *args], input=input)


def test_promote_asks_the_old_primary_to_step_down_then_promotes_in_its_own_region(calls: Calls) -> None:
    result = run("promote", B, "--yes", "--function-name", "rotate-fn")
    assert result.exit_code == 0, result.output
    assert calls.made == [CHECK, (A, "rotate-fn", {"operation": "step-down", "region": B}), (B, "rotate-fn", {"operation": "promote", "region": B})]
    assert f"old primary {A}: stepped down: its keyring names {B} the writer (generation 7)" in result.output
    assert f"promoted {B}: the writer now, in place of {A} (unreachable); keyring generation 1800000000" in result.output
    assert "active kid: kid-1" in result.output and f"PrimaryRegion={B}" in result.output
    assert f"enable it, or run jwks-rotator --region {B} rotate" in result.output  # the schedule is not enabled for you


def test_an_arn_names_the_old_primary_s_function_in_its_region(calls: Calls) -> None:
    arn = f"arn:aws:lambda:{B}:123456789012:function:rotate-fn"
    assert run("promote", B, "-y", "--function-name", arn).exit_code == 0
    assert [(region, name) for region, name, _ in calls.made] == [(B, arn), (A, arn.replace(B, A)), (B, arn)]


def test_promote_of_another_region_than_the_command_s_is_refused_before_any_call(calls: Calls) -> None:
    result = run("promote", A, "--yes", "--function-name", "rotate-fn")
    assert result.exit_code == 2 and f"pass --region {A}" in result.output and calls.made == []


def test_promote_asks_for_confirmation_and_does_nothing_when_declined(calls: Calls) -> None:
    result = run("promote", B, "--function-name", "rotate-fn", input="n\n")
    assert result.exit_code == 1 and "Make eu-west-1 the writer in place of us-east-1?" in result.output
    assert calls.made == [CHECK]  # only the check, which changes nothing
    confirmed = run("promote", B, "--function-name", "rotate-fn", input="y\n")
    assert confirmed.exit_code == 0 and len(calls.made) == 4


def test_no_step_down_goes_straight_to_the_promote(calls: Calls) -> None:
    assert run("promote", B, "--yes", "--no-step-down", "--function-name", "rotate-fn").exit_code == 0
    assert [event for _, _, event in calls.made] == [CHECK[2], {"operation": "promote", "region": B}]


def test_a_refused_step_down_is_reported_and_the_promote_decides(calls: Calls) -> None:
    calls.answers["step-down"] = {"error": "operator_not_allowed", "message": "the caller may not run rotate operations"}
    calls.answers["promote"] = {"error": "old_primary_not_stepped_down", "message": "the old primary us-east-1 answers ..."}
    result = run("promote", B, "--yes", "--function-name", "rotate-fn")
    assert result.exit_code == 1
    assert f"old primary {A}: step-down refused (operator_not_allowed" in result.output
    assert "error: old_primary_not_stepped_down: the old primary us-east-1 answers" in result.output


def test_an_unreachable_old_primary_is_one_line_then_the_promote(calls: Calls, monkeypatch: pytest.MonkeyPatch) -> None:
    from jwks_rotator_client import InvokeError

    original = operate.proving_client

    def down_in_a(obj: Any, cls: Any, function_name: str, **kwargs: Any) -> Any:
        if obj.region_name() == A:
            raise InvokeError("Could not connect to the endpoint URL")
        return original(obj, cls, function_name, **kwargs)

    monkeypatch.setattr(operate, "proving_client", down_in_a)
    result = run("promote", B, "--yes", "--function-name", "rotate-fn")
    assert result.exit_code == 0, result.output
    assert f"old primary {A}: no step-down (InvokeError: Could not connect to the endpoint URL)" in result.output


def test_already_primary_is_a_clear_no_op(calls: Calls) -> None:
    calls.answers["promote-check"] = {**CHECKED, "already_primary": True, "old_primary_state": "already_primary", "generation": 1_800_000_000}
    result = run("promote", B, "--yes", "--no-step-down", "--function-name", "rotate-fn")
    assert result.exit_code == 0 and f"{B} already is the writer: nothing to do (keyring generation 1800000000)" in result.output


def test_a_failed_first_publication_says_what_to_run(calls: Calls) -> None:
    calls.answers["promote"] = {**PROMOTED, "publish_error": "publish_failed", "published": []}
    result = run("promote", B, "--yes", "--no-step-down", "--function-name", "rotate-fn")
    assert result.exit_code == 0 and f"jwks-rotator --region {B} publish" in result.output


@pytest.mark.parametrize("code", ["promote_unsupported", "promote_other_writer", "replica_behind_publication"])
def test_a_refused_check_stops_before_the_old_primary_is_stepped_down(calls: Calls, code: str) -> None:
    calls.answers["promote-check"] = {"error": code, "message": "refused"}
    result = run("promote", B, "--yes", "--function-name", "rotate-fn")
    assert result.exit_code == 1 and f"error: {code}: refused" in result.output
    assert calls.made == [CHECK]  # no step-down: the old primary stays the writer
