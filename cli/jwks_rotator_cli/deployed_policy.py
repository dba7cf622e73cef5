"""The issuance policy a stack's sign function runs with: the file its ``ISSUANCE_POLICY_FILE`` names, in its code.

``policy check``/``policy test`` with ``--stack`` and no FILE judge this text with the stack's own settings. The
path is relative to the function's code directory on AWS (read from the code package ``GetFunction`` points to)
and absolute for a local stack (read from this machine, where that stack runs).
"""

from __future__ import annotations

import io
import posixpath
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from jwks_rotator.core.errors import ConfigurationError

from .stack import function_environment

POLICY_ENV = "ISSUANCE_POLICY_FILE"
DEFAULT_POLICY_FILE = "issuance-policy.yaml"
MAX_CODE_BYTES = 256 * 1024 * 1024  # Lambda's own limit for an unzipped package


def policy_from_package(package: bytes, path: str) -> str:
    """The text of ``path`` inside a function's zip ``package``; ConfigurationError when it is not there."""
    name = posixpath.normpath(path.lstrip("/"))
    try:
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            return archive.read(name).decode("utf-8")
    except (KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"issuance policy: the sign function's code has no readable {name} ({type(exc).__name__})") from None


def deployed_policy(lambda_client: Any, function_name: str) -> tuple[str, str]:
    """``(where, text)`` of the policy the sign function ``function_name`` loads."""
    path = function_environment(lambda_client, function_name).get(POLICY_ENV) or DEFAULT_POLICY_FILE
    if Path(path).is_absolute():
        try:
            return path, Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"issuance policy: cannot read {path} ({type(exc).__name__}); a local stack's policy is read where it runs") from None
    location = lambda_client.get_function(FunctionName=function_name).get("Code", {}).get("Location")
    if not location or not str(location).startswith("https://"):
        raise ConfigurationError(f"issuance policy: {function_name}'s code package is not downloadable here; pass the policy FILE")
    with urllib.request.urlopen(str(location), timeout=30) as answer:  # a presigned S3 URL GetFunction gave
        package = answer.read(MAX_CODE_BYTES + 1)
    return f"{function_name}:{path}", policy_from_package(package, path)
