"""CliContext: the local state it reads, per region when the local cloud runs several."""

from __future__ import annotations

from pathlib import Path

from jwks_rotator_cli.context import CliContext
from jwks_rotator_cli.local_state import write_state_file

ENDPOINT = "http://127.0.0.1:45123"


def test_a_local_state_of_several_regions_names_the_functions_of_the_region_asked_for(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    write_state_file(state, {
        "aws_endpoint": ENDPOINT, "region": "us-east-1", "rotate_function": "rotate-us", "sign_function": "sign-us",
        "regions": {"us-east-1": {"rotate_function": "rotate-us", "sign_function": "sign-us"},
                    "eu-west-1": {"rotate_function": "rotate-eu", "sign_function": "sign-eu", "lambda_endpoint": "http://elsewhere"}},
    })
    eu = CliContext(ENDPOINT, "eu-west-1", str(state)).local_state()
    assert eu is not None and (eu["rotate_function"], eu["sign_function"]) == ("rotate-eu", "sign-eu")
    assert "lambda_endpoint" not in eu  # the one AWS endpoint routes by region: only the names are the region's
    for region in (None, "us-east-1", "ap-south-1"):  # no region, the primary's, or one the state does not name
        plain = CliContext(ENDPOINT, region, str(state)).local_state()
        assert plain is not None and plain["rotate_function"] == "rotate-us"
    assert CliContext("http://127.0.0.1:1", "eu-west-1", str(state)).local_state() is None  # another endpoint: not this stack
