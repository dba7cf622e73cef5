"""With --stack every name and setting comes from the stack: an option or variable naming another function, log group,
JWKS or leeway is refused, named as it was set, before any call (the endpoint here answers nothing)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from jwks_rotator_cli.main import cli

DEAD = "http://127.0.0.1:9"  # discard port: nothing answers, so a refusal must come before any call
BASE = ["--endpoint-url", DEAD, "--stack", "prod"]
CLEARED = dict.fromkeys(("SIGN_FUNCTION_NAME", "ROTATE_FUNCTION_NAME", "AUDIT_LOG_GROUP", "JWKS_ROTATOR_STACK", "ISSUER"))


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["rotate", "--now"], {"ROTATE_FUNCTION_NAME": "other-stack-rotate"}, "ROTATE_FUNCTION_NAME"),
        (["rotate", "--now", "--function-name", "other-stack-rotate"], {}, "--function-name"),
        (["sign", "--sub", "a"], {"SIGN_FUNCTION_NAME": "other-stack-sign"}, "SIGN_FUNCTION_NAME"),
        (["sign", "--sub", "a", "--function-name", "other-stack-sign"], {}, "--function-name"),
        (["audit", "--jti", "x"], {"AUDIT_LOG_GROUP": "/other/group"}, "AUDIT_LOG_GROUP"),
        (["audit", "--jti", "x", "--function-name", "other-stack-sign"], {}, "--function-name"),
        (["verify", "a.b.c", "--leeway", "1h"], {}, "--leeway"),
        (["verify", "a.b.c", "--jwks-url", "https://evil.example/jwks.json"], {}, "--jwks-url"),
    ],
)
def test_a_name_the_stack_owns_given_with_stack_is_refused(args: list[str], env: dict[str, str], named: str) -> None:
    result = CliRunner().invoke(cli, [*BASE, *args], env={**CLEARED, **env})
    assert result.exit_code == 2, result.output
    assert f"{named} would override stack prod's own" in result.stderr
