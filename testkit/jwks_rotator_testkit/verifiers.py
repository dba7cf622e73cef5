"""Third-party verifiers for the product's tokens: PyJWT, jwcrypto, node's jose, and node's jwks-rsa with jsonwebtoken.

Each checks a token the way an application using that library would: the key
chosen by kid from the published JWKS, an algorithm allow-list, issuer and
audience. Nothing here uses the product's own code.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt as pyjwt
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt


@dataclass(frozen=True)
class Expectation:
    """Who should verify, for the same token."""

    issuer: str
    audience: str


def pyjwt_verify(client: pyjwt.PyJWKClient, token: str, alg: str, expect: Expectation) -> dict[str, Any]:
    """The documented PyJWT pattern: key by kid from the JWKS URL, then decode with an allow-list."""
    signing_key = client.get_signing_key_from_jwt(token)
    return pyjwt.decode(
        token,
        signing_key.key,
        algorithms=[alg],
        audience=expect.audience,
        issuer=expect.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


def jwcrypto_verify(jwks_json: str, token: str, alg: str, expect: Expectation, *, leeway: int | None = None) -> dict[str, Any]:
    """jwcrypto with the fetched JWKS as a key set (chosen by kid) and explicit claim checks.

    On failure the exception gets a ``verify_log`` attribute: jwcrypto's own
    record of why each key failed (with a key set it raises ``JWTMissingKey``
    both for an unknown kid and for a signature the kid's key rejects; the log
    tells them apart).
    """
    keyset = jwcrypto_jwk.JWKSet.from_json(jwks_json)
    checker = jwcrypto_jwt.JWT(
        algs=[alg],
        # exp/nbf set to None: checked against the current time with the leeway (jwcrypto's default: 60 s).
        check_claims={"iss": expect.issuer, "aud": expect.audience, "exp": None, "nbf": None},
    )
    if leeway is not None:
        checker.leeway = leeway
    try:
        checker.deserialize(token, keyset)
    except Exception as exc:
        exc.verify_log = list(getattr(checker, "deserializelog", None) or [])  # type: ignore[attr-defined]
        raise
    claims: dict[str, Any] = json.loads(checker.claims)
    return claims


class NodeLineProcess:
    """One ``node SCRIPT`` process (from ``node_dir``, its packages installed there); one JSON request and answer per line.

    Safe to share between threads: requests are answered one at a time.
    """

    script = ""
    answer_timeout = 60.0
    """Seconds an answer may take (a verifier's own fetch times out after 5 s); past it the process is killed."""

    def __init__(self, node_dir: Path) -> None:
        self._process = subprocess.Popen(
            self.command(node_dir),
            cwd=node_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        self._lock = threading.Lock()
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_answers, name=f"{self.script or 'line-process'}-stdout", daemon=True).start()

    def command(self, node_dir: Path) -> list[str]:
        return ["node", str(node_dir / self.script)]

    def _read_answers(self) -> None:
        """Hand each stdout line to :meth:`request`; an empty string once the process closed its output."""
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._answers.put(line)
        self._answers.put("")

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one JSON request line; the process's one-line JSON answer (killed, and an error, after ``answer_timeout``)."""
        with self._lock:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            try:
                line = self._answers.get(timeout=self.answer_timeout)
            except queue.Empty:
                self._process.kill()
                self._process.wait(timeout=10)
                raise RuntimeError(f"{self.script or 'line process'} did not answer within {self.answer_timeout:g} s: killed") from None
        if not line:
            raise RuntimeError(f"node verifier exited: {self.stderr()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stderr(self) -> str:
        """What the process wrote to stderr, once it has exited."""
        if self._process.poll() is None:
            return "(still running)"
        assert self._process.stderr is not None
        return self._process.stderr.read()

    def close(self) -> None:
        """End the process (closing its input), killing it after 10 s."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


class NodeVerifier(NodeLineProcess):
    """One ``node verify.mjs`` process (jose installed beside it).

    Remote key sets are kept per (client, jwksUrl, cacheMaxAge, cooldownDuration)
    inside the process, so jose's cache behaves as in a long-lived server.
    """

    script = "verify.mjs"

    def verify(
        self,
        token: str,
        *,
        alg: str,
        expect: Expectation,
        jwks_url: str,
        cache_max_age_ms: int,
        cooldown_ms: int,
        client: str = "default",
    ) -> dict[str, Any]:
        """jose's answer: ``{"ok": true, ...}`` or ``{"ok": false, "code": <jose error code>, ...}``."""
        request = {
            "token": token,
            "alg": alg,
            "issuer": expect.issuer,
            "audience": expect.audience,
            "jwksUrl": jwks_url,
            "cacheMaxAge": cache_max_age_ms,
            "cooldownDuration": cooldown_ms,
            "client": client,
        }
        return self.request(request)


class JwksRsaVerifier(NodeLineProcess):
    """One ``node jwks-rsa-verify.mjs`` process: jwks-rsa picks the key by kid, jsonwebtoken verifies (the Express pattern).

    A client is kept per (client, jwksUrl, cacheMaxAge, requestsPerMinute): jwks-rsa caches each kid's key for
    ``cacheMaxAge`` (its default is 10 h) and fetches the JWKS for a kid it does not hold, at most
    ``requestsPerMinute`` times a minute.
    """

    script = "jwks-rsa-verify.mjs"

    def verify(
        self, token: str, *, alg: str, expect: Expectation, jwks_url: str, cache_max_age_ms: int, requests_per_minute: int = 10, client: str = "default"
    ) -> dict[str, Any]:
        """``{"ok": true, "claims", "header"}`` or ``{"ok": false, "name": <error class>, "message"}``."""
        return self.request(
            {
                "token": token,
                "alg": alg,
                "issuer": expect.issuer,
                "audience": expect.audience,
                "jwksUrl": jwks_url,
                "cacheMaxAge": cache_max_age_ms,
                "requestsPerMinute": requests_per_minute,
                "client": client,
            }
        )
