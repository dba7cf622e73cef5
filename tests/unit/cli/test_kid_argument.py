"""A kid is a base64url thumbprint, and one in 32 starts with ``-``: the CLI must read it as the argument, not as flags."""

from __future__ import annotations

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwks_rotator_cli.operate import revoke

BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def parsed_kid(args: list[str]) -> str:
    context = revoke.make_context("revoke", list(args))
    kid = context.params["kid"]
    assert isinstance(kid, str)
    return kid


@given(st.text(alphabet=BASE64URL, min_size=42, max_size=42))
def test_a_kid_starting_with_a_dash_is_the_argument_whole(tail: str) -> None:
    kid = "-" + tail
    assert parsed_kid([kid]) == kid
    assert parsed_kid(["--lambda-endpoint-url", "http://127.0.0.1:9", kid]) == kid


def test_a_kid_after_a_double_dash_still_works() -> None:
    kid = "-Pyc" + "a" * 39
    assert parsed_kid(["--", kid]) == kid


def test_a_mistyped_option_is_still_refused_not_taken_for_a_kid() -> None:
    with pytest.raises(click.UsageError):
        revoke.make_context("revoke", ["--dry-rn", "a" * 43])
