"""The revocation list as one SSM parameter: revoked kids kept where restoring the keyring secret cannot roll them back.

A ``String`` parameter holding a compact JSON list of kids, oldest first.
:class:`SsmRevocationList` (the rotator's :class:`~jwks_rotator.core.ports.RevocationList`) creates it when missing
and adds by read-modify-write, re-writing the union until its write lands on the version it read (SSM has no
conditional write; writers only add). :class:`SsmRevocationReader` (the signer's
:class:`~jwks_rotator.core.ports.RevocationReader`) treats a missing or malformed parameter as a
:class:`StoreError`, so the signer fails closed. A full list (:data:`MAX_VALUE_BYTES`) refuses a new revocation
instead of dropping an old kid.

Design (the write protocol, the size limit and why nothing is dropped): docs/design/revocation-list.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.keys.revocation import MALFORMED_LIST, decode_kids, encode_kids

MAX_VALUE_BYTES = 4096
"""A standard-tier String parameter's value limit."""
MAX_ATTEMPTS = 5
"""Writes one ``add`` may make before it gives up on writers racing it."""
MALFORMED = MALFORMED_LIST
_HISTORY_PAGE = 50


class RevocationListFullError(StoreError):
    """The revocation parameter has no room for another kid."""

    code = "revocation_list_full"


class _Parameter:
    """The SSM calls on one parameter, each failure a :class:`StoreError` naming the AWS error code only."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def get(self) -> tuple[tuple[str, ...], int]:
        """The kids and the parameter's version."""
        response = self.call("read", self.client.get_parameter)
        parameter = response.get("Parameter") if isinstance(response, Mapping) else None
        version = parameter.get("Version") if isinstance(parameter, Mapping) else None
        if not isinstance(parameter, Mapping) or parameter.get("Type") != "String" or type(version) is not int:
            raise StoreError(f"the revocation list could not be read ({MALFORMED})", reason=MALFORMED)
        return decode_kids(parameter.get("Value")), version

    def put(self, kids: tuple[str, ...], *, overwrite: bool) -> int:
        """Write ``kids``; the new version."""
        response = self.call("write", self.client.put_parameter, Value=encode_kids(kids), Type="String", Overwrite=overwrite)
        version = response.get("Version") if isinstance(response, Mapping) else None
        if type(version) is not int:
            raise StoreError(f"the revocation list could not be written ({MALFORMED})", reason=MALFORMED)
        return version

    def kids_written_between(self, after: int, before: int) -> set[str]:
        """Every kid the versions strictly between ``after`` and ``before`` held."""
        kids: set[str] = set()
        token: str | None = None
        while True:
            page = {"MaxResults": _HISTORY_PAGE, **({"NextToken": token} if token else {})}
            response = self.call("read the history of", self.client.get_parameter_history, **page)
            for entry in response.get("Parameters", []):
                version = entry.get("Version")
                if type(version) is int and after < version < before:
                    kids.update(decode_kids(entry.get("Value")))
            token = response.get("NextToken")
            if not token:
                return kids

    def call(self, verb: str, operation: Any, **params: Any) -> Any:
        try:
            return operation(Name=self.name, **params)
        except AWS_ERRORS as exc:
            code = error_code(exc)
            raise StoreError(f"cannot {verb} the revocation list {self.name}: {code}", reason=code) from None


class SsmRevocationReader:
    """The signer's read of the revocation list (``GetParameter``)."""

    def __init__(self, client: Any, name: str) -> None:
        self._parameter = _Parameter(client, name)

    def read(self) -> frozenset[str]:
        return frozenset(self._parameter.get()[0])


class SsmRevocationList:
    """The rotator's revocation list: created when missing, only ever added to."""

    def __init__(self, client: Any, name: str) -> None:
        self._parameter = _Parameter(client, name)

    @property
    def name(self) -> str:
        return self._parameter.name

    def load(self) -> frozenset[str]:
        return frozenset(self._get_or_create()[0])

    def add(self, kid: str) -> None:
        """Put ``kid`` on the list (a no-op when it is there), keeping every kid a racing writer added."""
        wanted = {kid}
        for _ in range(MAX_ATTEMPTS):
            kids, version = self._get_or_create()
            missing = [k for k in sorted(wanted) if k not in kids]
            if not missing:
                return
            updated = (*kids, *missing)
            if len(encode_kids(updated).encode("utf-8")) > MAX_VALUE_BYTES:
                raise RevocationListFullError(
                    f"revocation refused: the revocation list {self._parameter.name} holds {len(kids)} kids and has no "
                    f"room for more ({MAX_VALUE_BYTES} bytes); remove kids no keyring version holds any more (see the runbook)",
                    reason="RevocationListFull",
                )
            written = self._parameter.put(updated, overwrite=True)
            if written == version + 1:
                return  # nobody wrote between our read and our write: nothing of theirs was lost
            wanted |= self._parameter.kids_written_between(version, written)
        raise StoreError(
            f"cannot add to the revocation list {self._parameter.name}: other writers kept changing it "
            f"({MAX_ATTEMPTS} attempts)",
            reason="RevocationListContended",
        )

    def _get_or_create(self) -> tuple[tuple[str, ...], int]:
        try:
            return self._parameter.get()
        except StoreError as exc:
            if exc.reason != "ParameterNotFound":
                raise
        try:
            self._parameter.put((), overwrite=False)
        except StoreError as exc:
            if exc.reason != "ParameterAlreadyExists":
                raise
        return self._parameter.get()


class SsmRevocationMirror:
    """The parameter as the mirror of the stack's revocation record (:class:`jwks_rotator.core.ports.RevocationMirror`).

    ``replace`` overwrites whatever the parameter holds; a parameter another
    principal turned into another type (SecureString, StringList), which
    ``PutParameter`` cannot overwrite, is deleted and written again.
    """

    def __init__(self, client: Any, name: str) -> None:
        self._parameter = _Parameter(client, name)

    @property
    def name(self) -> str:
        return self._parameter.name

    def read_mirror(self) -> tuple[str, ...]:
        return self._parameter.get()[0]

    def replace(self, kids: tuple[str, ...]) -> None:
        try:
            self._parameter.put(kids, overwrite=True)
        except StoreError as exc:
            if exc.reason not in ("ValidationException", "UnsupportedParameterType", "HierarchyTypeMismatchException"):
                raise
            self._parameter.call("delete", self._parameter.client.delete_parameter)
            self._parameter.put(kids, overwrite=False)
