"""The sign path's reads through the AWS Parameters and Secrets Lambda Extension: plain HTTP on localhost, no boto3.

:class:`ExtensionKeyringReader` (a :class:`~jwks_rotator.core.ports.KeyringReader`) and
:class:`ExtensionRevocationReader` (a :class:`~jwks_rotator.core.ports.RevocationReader`) read the secret's
``AWSCURRENT`` version and the revocation parameter from ``http://localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT``,
each request carrying the function's ``AWS_SESSION_TOKEN``. The template sets the extension's caches to 0, so the
signer's own ``signer-cache-ttl`` stays the only bound on how long a retired or revoked key signs.

Every failure is a :class:`~jwks_rotator.core.errors.StoreError` whose ``reason`` is a code (the AWS error code,
``HTTP<status>``, ``ExtensionUnreachable`` or ``MalformedResponse``); no answer body is ever quoted.

Design (the extension's endpoints, its caches, why it answers only during an invocation): docs/design/secrets-extension.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

from jwks_rotator.adapters.lean.http import HttpError, HttpTransport
from jwks_rotator.core.errors import ConfigurationError, StoreError
from jwks_rotator.core.keys.keyring import StoredKeyring
from jwks_rotator.core.keys.revocation import decode_kids

PORT_ENV = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
"""The extension's own setting: its port on localhost. The sign path uses the extension when it is set."""
DEFAULT_PORT = 2773
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
SESSION_TOKEN_ENV = "AWS_SESSION_TOKEN"
CURRENT_STAGE = "AWSCURRENT"
MALFORMED = "MalformedResponse"
UNREACHABLE = "ExtensionUnreachable"
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 3.0
MAX_ANSWER_BYTES = 256 * 1024
"""A keyring secret is at most 64 KiB; the JSON around it and its escaping stay well inside this."""

_CODE = re.compile(r"[A-Za-z][A-Za-z0-9]{1,63}")


class ExtensionEndpoint(NamedTuple):  # not a dataclass: a tenth of the class creation cost at INIT
    """Where the extension listens, and where the caller's session token comes from (read at every request)."""

    port: int
    token: Callable[[], str]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ExtensionEndpoint | None:
        """The extension named by :data:`PORT_ENV`, or ``None`` when it is not set (no extension configured).

        A malformed port raises :class:`~jwks_rotator.core.errors.ConfigurationError`.
        """
        text = environ.get(PORT_ENV)
        if text is None:
            return None
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ConfigurationError(f"{PORT_ENV}: must be a TCP port number (1-65535)")
        return cls(int(text), lambda: environ.get(SESSION_TOKEN_ENV, ""))

    def transport(self) -> HttpTransport:
        return HttpTransport(f"http://localhost:{self.port}", connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                             max_body=MAX_ANSWER_BYTES)


class ExtensionClient:
    """GETs to the extension; the parsed JSON object of a 200 answer, a :class:`StoreError` naming a code otherwise."""

    def __init__(self, transport: HttpTransport, token: Callable[[], str]) -> None:
        self._transport = transport
        self._token = token

    def get(self, path: str, what: str) -> Mapping[str, Any]:
        try:
            response = self._transport.request("GET", path, headers={TOKEN_HEADER: self._token()})
        except HttpError:
            raise _unreadable(what, UNREACHABLE) from None
        if response.status != 200:
            raise _unreadable(what, _error_code(response.status, response.body))
        try:
            document = json.loads(response.body)
        except ValueError:
            document = None
        if not isinstance(document, Mapping):
            raise _unreadable(what, MALFORMED)
        return document


class ExtensionKeyringReader:
    """Reads the ``AWSCURRENT`` version of a secret holding a keyring document."""

    def __init__(self, client: ExtensionClient, secret_id: str) -> None:
        self._client = client
        self._path = f"/secretsmanager/get?secretId={quote(secret_id, safe='')}&versionStage={CURRENT_STAGE}"

    def read_current(self) -> StoredKeyring:
        answer = self._client.get(self._path, "the keyring secret")
        version_id = answer.get("VersionId")
        text = answer.get("SecretString")
        if type(version_id) is not str or type(text) is not str:
            raise _unreadable("the keyring secret", MALFORMED)
        return StoredKeyring(version_id, text)


class ExtensionRevocationReader:
    """Reads the revocation list parameter (a ``String``: a JSON list of kids); a missing one fails closed."""

    def __init__(self, client: ExtensionClient, name: str) -> None:
        self._client = client
        self._path = f"/systemsmanager/parameters/get?name={quote(name, safe='')}"

    def read(self) -> frozenset[str]:
        answer = self._client.get(self._path, "the revocation list")
        parameter = answer.get("Parameter")
        if not isinstance(parameter, Mapping) or parameter.get("Type") != "String":
            raise _unreadable("the revocation list", MALFORMED)
        return frozenset(decode_kids(parameter.get("Value")))


def readers_for(endpoint: ExtensionEndpoint, secret_id: str, parameter: str) -> tuple[ExtensionKeyringReader, ExtensionRevocationReader]:
    """The keyring and revocation readers, sharing one kept-alive connection to the extension."""
    client = ExtensionClient(endpoint.transport(), endpoint.token)
    return ExtensionKeyringReader(client, secret_id), ExtensionRevocationReader(client, parameter)


def _error_code(status: int, body: bytes) -> str:
    """The AWS error code of an error answer (``{"__type": "...#Code"}``), else ``HTTP<status>``; never the body itself."""
    try:
        document = json.loads(body) if body.startswith(b"{") else None
    except ValueError:
        document = None
    kind = document.get("__type") if isinstance(document, dict) else None
    if isinstance(kind, str):
        code = kind.rsplit("#", 1)[-1]
        if _CODE.fullmatch(code):
            return code
    return f"HTTP{status}"


def _unreadable(what: str, reason: str) -> StoreError:
    return StoreError(f"{what} could not be read through the Parameters and Secrets extension ({reason})", reason=reason)
