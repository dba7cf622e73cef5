"""What ``jwks-rotator local`` and the operator commands share: the state file and the template's names.

The local stack writes the state file while it runs; operator commands read
it when ``--endpoint-url`` names that stack's AWS endpoint. This module is the
one definition of its name and format, so the operator CLI needs nothing of
the local cloud package to read it.

Keys: ``format``, ``pid``, ``region``, ``endpoint`` (the one AWS endpoint:
the functions' Lambda API and moto behind one URL), ``stack_name`` (the
CloudFormation stack whose outputs name the local resources),
``moto_endpoint``, ``aws_endpoint`` (the URL the functions use for AWS),
``lambda_endpoint``, ``sts_endpoint`` (the signature-checking STS the sign
function replays caller proofs to), ``demo_caller_role`` (the role
``jwks-rotator sign`` assumes there without ``--role-arn``),
``issuance_policy_file``, ``edge_url``, ``jwks_url``, ``discovery_url``,
``issuer``, ``functions`` and ``settings`` (by environment variable name).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE_NAME = ".jwks-rotator-local.json"
STATE_FORMAT = "jwks-rotator/local-state/v1"
DEFAULT_REGION = "us-east-1"
SIGN_FUNCTION = "SignFunction"
ROTATE_FUNCTION = "RotateFunction"
LOCAL_ACCOUNT = "123456789012"
"""moto's default account: the local stack's resources and roles live in it."""
DEMO_CALLER_ROLE = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/jwks-rotator-demo-caller"
"""The role the local stack's demo policy lets sign (profile ``demo``); the local stack always creates it."""
OPERATOR_ROLE = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/jwks-rotator-local-operator"
"""The role the local stack's operator-roles lists by default: ``rotate``, ``revoke`` and ``publish`` act as it there
(state key ``operator_role``; a state file without it means this role); the local stack always creates it."""


def write_state_file(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (endpoints, names, settings: never a secret) tagged with :data:`STATE_FORMAT`."""
    Path(path).write_text(json.dumps({"format": STATE_FORMAT, **state}, indent=2) + "\n", encoding="utf-8")


def read_state_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The state a running ``jwks-rotator local`` wrote, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == STATE_FORMAT else None
