"""The token signer: the active key cached from the keyring secret, and a hand-rolled compact JWS.

One key cache per warm container: the keyring (through a :class:`~jwks_rotator.core.ports.KeyringReader`) and the
revocation list (through a :class:`~jwks_rotator.core.ports.RevocationReader`) are read together and trusted for
``signer-cache-ttl`` on a monotonic clock; past that both are read again before the next token, and a failed read
answers ``signing_unavailable``. That bound is what ``retention`` relies on: a retired or revoked key signs for at
most ``signer-cache-ttl`` more. Only a published ``active`` key signs; a revoked kid or a restore hold signs nothing.
The wall clock dates tokens and nothing else.

A key in KMS custody is signed with by one ``Sign`` call per token through the
:class:`~jwks_rotator.core.ports.KeySigner` port; a KMS refusal (disabled key) re-reads the keyring once, then
fails closed.

Invocations running at once on threads share one cache: one read at a time, under a lock. :meth:`KeyCache.forget`
drops the key, its deadlines and any failure (a copy restored from a snapshot, or a forked process, reads afresh).

Design (early reads, prefetch, refresh interval, KMS signatures): docs/design/key-cache.md.
"""

from __future__ import annotations

import binascii
import contextlib
import contextvars
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from jwks_rotator.core.errors import (
    InvalidClaimsError,
    JwksRotatorError,
    KeyringError,
    PayloadTooLargeError,
    SigningKeyDisabledError,
    SigningUnavailableError,
    StoreError,
    TtlTooLongError,
    UnsupportedAlgorithmError,
)
from jwks_rotator.core.issuance.limits import MAX_TOKEN_BYTES, TokenPolicy, TokenRequest, build_claims, from_fields, parse_request
from jwks_rotator.core.keys.algorithms import get_algorithm, signature_verifies
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord, KeyState, load_private_key
from jwks_rotator.core.settings import Settings

if TYPE_CHECKING:  # the ports are protocols, checked statically: the sign path does not build their classes
    from jwks_rotator.core.keys.keyring import StoredKeyring
    from jwks_rotator.core.ports import KeyringReader, KeySigner, RevocationReader

Clock = Callable[[], float]
"""Seconds as a float: Unix time (``time.time``) for tokens, a monotonic count (``time.monotonic``) for the cache."""

REFRESH_INTERVAL = 1.0
"""Least time between early cache reads, and between a failed read and the next try."""

# One encoder for every token: json.dumps with options would build a new one per call.
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_UNENCODABLE = "claims hold a value JSON cannot carry: a lone surrogate, NaN, Infinity or an over-long integer"

_PROBE = b"jwks-rotator probe"
"""Signed and verified once per loaded key, before the key signs any token."""

RefreshListener = Callable[[str, str, "SigningKey | None", str], None]
"""Told of every cache read: (trigger ``initial|expired|early|refused`` (refused: KMS refused the key as disabled), outcome ``loaded|confirmed|unusable|failed``, key,
reason: why there is no key, empty when there is one)."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data: bytes) -> bytes:
    """Base64url without padding (RFC 7515 section 2); binascii directly: two calls per token fewer than base64's."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


@dataclass(frozen=True)
class SigningKey:
    """An active, published key ready to sign: its header segment is pre-encoded."""

    kid: str
    alg: str
    record: KeyRecord = field(repr=False)
    signing_prefix: bytes = field(repr=False)  # base64url(header) + b"."
    sign: Callable[[bytes], bytes] = field(repr=False)
    signature_chars: int = 0
    due_at: float = math.inf  # activated_at + rotation-period, unix seconds
    max_ttl: float = math.inf  # the longest token lifetime the key records (max-token-ttl as the rotator saw it)


class _Entry(NamedTuple):  # not a dataclass: a tenth of the class creation cost at INIT
    version_id: str
    key: SigningKey | None
    reason: str  # why key is None
    revoked: frozenset[str] = frozenset()  # the revocation list the entry was checked against


class IssuedToken(NamedTuple):
    """A signed token and what may be logged about it (never the token itself in logs)."""

    token: str
    kid: str
    alg: str
    jti: str
    aud: str | list[str]
    ttl: int
    expires_at: int

    def response(self) -> dict[str, Any]:
        """The success shape of the sign function."""
        return {"token": self.token, "token_type": "Bearer", "kid": self.kid, "alg": self.alg, "expires_at": self.expires_at}


class Outcome(NamedTuple):
    """One request's answer: the response plus the token or the error behind it."""

    response: dict[str, Any]
    issued: IssuedToken | None = None
    error: JwksRotatorError | None = None
    cause: str = ""  # exception type behind an internal_error, for logs


def make_signing_key(
    record: KeyRecord, rotation_period: float, *, reuse: SigningKey | None = None, vault: KeySigner | None = None
) -> SigningKey:
    """Load ``record`` (which must be active and published) into a :class:`SigningKey`.

    ``reuse`` is the previously loaded key; when it holds the same kid and key
    material, its loaded private key is kept (RSA loads cost tens of ms). A
    record in KMS custody signs through ``vault`` (see the module doc).
    """
    if record.state is not KeyState.ACTIVE or record.published_at is None:
        raise SigningUnavailableError(f"key {record.kid} is not an active, published key")
    due_at = (record.activated_at.timestamp() + rotation_period) if record.activated_at is not None else math.inf
    if (reuse is not None and reuse.kid == record.kid and reuse.alg == record.alg
            and reuse.record.kms_key_arn == record.kms_key_arn and reuse.record.private_jwk == record.private_jwk):
        return SigningKey(record.kid, record.alg, record, reuse.signing_prefix, reuse.sign, reuse.signature_chars, due_at, _max_ttl(record))
    if record.kms_key_arn is not None:
        return _kms_signing_key(record, due_at, vault)
    algorithm = get_algorithm(record.alg)
    jwk = record.private_jwk
    if jwk.get("kty") != algorithm.kty or (algorithm.crv is not None and jwk.get("crv") != algorithm.crv):
        raise KeyringError(f"key {record.kid}: key type does not match algorithm {record.alg}")
    private_key = load_private_key(jwk)
    sign_with = algorithm.sign

    def sign(data: bytes) -> bytes:
        return sign_with(private_key, data)

    try:
        probe = sign(_PROBE)
    except Exception:  # a key the algorithm cannot use (wrong size or type)
        raise KeyringError(f"key {record.kid}: cannot sign with algorithm {record.alg}") from None
    if not signature_verifies(record.alg, private_key.public_key(), _PROBE, probe):
        # RSA keys load without cryptography's validation: a key whose numbers agree but do not make a working key
        # (a composite factor) is caught here, before any token carries its signature.
        raise KeyringError(f"key {record.kid}: its first signature does not verify under its public key")
    header = json.dumps({"alg": record.alg, "typ": "JWT", "kid": record.kid}, separators=(",", ":")).encode("utf-8")
    return SigningKey(record.kid, record.alg, record, b64url(header) + b".", sign, (4 * len(probe) + 2) // 3, due_at, _max_ttl(record))


def _kms_signing_key(record: KeyRecord, due_at: float, vault: KeySigner | None) -> SigningKey:
    """A key in KMS custody: public metadata cached, one ``Sign`` call per token, no probe (KMS bills each call)."""
    # Measured reason: as in KeyRecord.from_dict, the KMS module (~5 ms of imports) is loaded by a KMS key only.
    from jwks_rotator.core.keys.kms import MAX_RAW_MESSAGE, der_to_jose, kms_algorithm, signature_bytes

    key_arn = record.kms_key_arn
    assert key_arn is not None
    if vault is None:
        raise KeyringError(f"key {record.kid} is held in KMS but this signer has no KMS client")
    algorithm = get_algorithm(record.alg)
    jwk = record.private_jwk  # public members only for a KMS record
    if jwk.get("kty") != algorithm.kty or (algorithm.crv is not None and jwk.get("crv") != algorithm.crv):
        raise KeyringError(f"key {record.kid}: key type does not match algorithm {record.alg}")
    kms = kms_algorithm(record.alg)
    signing_algorithm, half = kms.signing_algorithm, kms.ecdsa_half

    def sign(data: bytes) -> bytes:
        if len(data) > MAX_RAW_MESSAGE:  # KMS refuses it (moto does not): refuse before the call
            raise PayloadTooLargeError(f"a KMS-signed token's signing input may be at most {MAX_RAW_MESSAGE} bytes")
        answer = vault.sign(key_arn, data, signing_algorithm)
        if answer.key_id != key_arn:
            raise SigningUnavailableError(f"the key vault answered for another key than {record.kid}")
        return der_to_jose(answer.signature, half) if half else answer.signature

    header = json.dumps({"alg": record.alg, "typ": "JWT", "kid": record.kid}, separators=(",", ":")).encode("utf-8")
    chars = (4 * signature_bytes(record.alg, jwk) + 2) // 3
    return SigningKey(record.kid, record.alg, record, b64url(header) + b".", sign, chars, due_at, _max_ttl(record))


def _max_ttl(record: KeyRecord) -> float:
    """The longest lifetime a token of this key may have: what the key records (its retention is computed from it)."""
    return record.max_token_ttl.total_seconds() if record.max_token_ttl is not None else math.inf


class KeyCache:
    """The active signing key, read through ``reader`` (and ``revocations``) and cached by ``VersionId`` (see module doc)."""

    def __init__(
        self,
        reader: KeyringReader,
        *,
        ttl: float,
        rotation_period: float,
        listener: RefreshListener | None = None,
        refresh_interval: float = REFRESH_INTERVAL,
        revocations: RevocationReader | None = None,
        monotonic: Clock = time.monotonic,
        vault: KeySigner | None = None,
    ) -> None:
        self._reader = reader
        self._vault = vault
        self._revocations = revocations
        self._ttl = ttl
        self._rotation_period = rotation_period
        self._listener = listener
        self._interval = refresh_interval
        self._monotonic = monotonic
        self._entry: _Entry | None = None
        self._fresh_until = -math.inf
        self._last_attempt = -math.inf
        self._failure: SigningUnavailableError | None = None
        self._prefetching: threading.Thread | None = None
        self._lock = threading.RLock()

    def forget(self) -> None:
        """Drop the cached key, its monotonic deadlines and any recorded failure: the next :meth:`get` reads afresh.

        For a copy restored from a snapshot or a forked process: no key from before is used, and no deadline
        timed on another copy's monotonic clock. The lock is made anew (a fork may copy it held).
        """
        self._lock = threading.RLock()
        self._entry = None
        self._fresh_until = -math.inf
        self._last_attempt = -math.inf
        self._failure = None
        self._prefetching = None

    @property
    def holds_key(self) -> bool:
        """Whether a key (private material or a KMS key's handle) is cached now."""
        entry = self._entry
        return entry is not None and entry.key is not None

    def prefetch(self) -> None:
        """Start the first read in a background thread, unless the cache was read already (a cold container's first call).

        The reads are network I/O (through the extension: its own first reads are AWS calls): started before the
        caller's proof is replayed to STS, they run during the replay instead of after it. :meth:`get` and
        :meth:`reread_after_refusal` wait for them, and :meth:`settle` lets a caller wait before it returns (no
        thread outlives the invocation that started it).
        """
        if self._prefetching is not None or self._entry is not None or self._last_attempt != -math.inf:
            return
        with self._lock:
            if self._prefetching is not None or self._entry is not None or self._last_attempt != -math.inf:
                return  # another invocation started it, or read, meanwhile
            # In the caller's context (contextvars): whatever the invocation set up there applies to the read too.
            context = contextvars.copy_context()
            thread = threading.Thread(target=context.run, args=(self._prefetch_read,), name="key-cache-prefetch", daemon=True)
            thread.start()
            self._prefetching = thread  # only once started: another invocation may join it as soon as it sees it

    def _prefetch_read(self) -> None:
        # A failed read is recorded (the failure, the attempt's time) and notified by _refresh: get() raises it.
        with self._lock, contextlib.suppress(Exception):
            if self._entry is None:
                self._refresh(self._monotonic(), "initial")

    def settle(self) -> None:
        """Wait for a background read started by :meth:`prefetch`, if one runs."""
        thread = self._prefetching
        if thread is not None:
            thread.join()
            if self._prefetching is thread:
                self._prefetching = None

    def get(self, now: float) -> SigningKey:
        """The key to sign with at wall-clock ``now``; :class:`SigningUnavailableError` when there is none."""
        if self._prefetching is not None:
            self.settle()
        if not self._lock.acquire(blocking=False):
            # Another invocation holds the cache, perhaps for an early read of an overdue key (network I/O): a key
            # cached within its ttl signs now, as it would if that read failed; past the ttl, wait for the read.
            # The deadline first: a read writes the entry before the deadline, so a newer entry is never paired
            # with an older deadline (a key the read found revoked is not returned here).
            fresh_until = self._fresh_until
            entry = self._entry
            if entry is not None and entry.key is not None and self._monotonic() < fresh_until:
                return entry.key
            self._lock.acquire()
        try:
            return self._get(now)
        finally:
            self._lock.release()

    def _get(self, now: float) -> SigningKey:
        tick = self._monotonic()
        entry = self._entry
        if entry is not None and tick < self._fresh_until:
            key = entry.key
            if key is not None and now < key.due_at:
                return key  # the warm path: no AWS call
            if not 0 <= tick - self._last_attempt < self._interval:
                with contextlib.suppress(SigningUnavailableError):  # keep the cached entry until its ttl runs out
                    self._refresh(tick, "early")
                entry = self._entry
                assert entry is not None
                key = entry.key
            if key is not None:
                return key
            raise SigningUnavailableError(entry.reason)
        if self._failure is not None and 0 <= tick - self._last_attempt < self._interval:
            raise self._failure
        self._refresh(tick, "initial" if entry is None else "expired")
        assert self._entry is not None
        if self._entry.key is None:
            raise SigningUnavailableError(self._entry.reason)
        return self._entry.key

    def reread_after_refusal(self, refused: SigningKey) -> SigningKey:
        """The vault refused ``refused`` as disabled: read the keyring once and return another key, or fail closed.

        At most one read per :data:`REFRESH_INTERVAL`: a stream of refusals cannot hammer the store.
        """
        self.settle()
        with self._lock:
            return self._reread(refused)

    def _reread(self, refused: SigningKey) -> SigningKey:
        tick = self._monotonic()
        entry = self._entry
        if entry is not None and entry.key is not None and (entry.key.kid, entry.key.record.kms_key_arn) != (
                refused.kid, refused.record.kms_key_arn):
            return entry.key  # another invocation read the keyring since this one's refusal
        if 0 <= tick - self._last_attempt < self._interval:
            raise SigningUnavailableError(f"no signing key: the key vault refused the active key {refused.kid} (disabled)")
        self._refresh(tick, "refused")
        entry = self._entry
        assert entry is not None
        key = entry.key
        if key is None:
            raise SigningUnavailableError(entry.reason)
        if key.kid == refused.kid and key.record.kms_key_arn == refused.record.kms_key_arn:
            raise SigningUnavailableError(f"no signing key: the key vault refused the active key {refused.kid} (disabled)")
        return key

    def _refresh(self, tick: float, trigger: str) -> None:
        self._last_attempt = tick
        try:
            stored = self._reader.read_current()
        except Exception as exc:  # StoreError from the adapter; anything else is an adapter bug, named by type only
            self._fail(trigger, f"no signing key: the keyring secret could not be read ({_failure_reason(exc)})")
        try:
            revoked = self._revocations.read() if self._revocations is not None else frozenset()
        except Exception as exc:
            self._fail(trigger, f"no signing key: the revocation list could not be read ({_failure_reason(exc)})")
        self._failure = None
        previous = self._entry
        if previous is not None and previous.version_id == stored.version_id and previous.revoked == revoked:
            outcome = "confirmed"
        else:
            self._entry = self._load(stored, revoked, previous.key if previous is not None else None)
            outcome = "loaded" if self._entry.key is not None else "unusable"
        self._fresh_until = tick + self._ttl
        assert self._entry is not None
        self._notify(trigger, outcome, self._entry.key, self._entry.reason)

    def _fail(self, trigger: str, reason: str) -> NoReturn:
        self._failure = SigningUnavailableError(reason)
        self._notify(trigger, "failed", None, reason)
        raise self._failure from None

    def _load(self, stored: StoredKeyring, revoked: frozenset[str], previous: SigningKey | None) -> _Entry:
        version_id = stored.version_id

        def unusable(reason: str) -> _Entry:
            return _Entry(version_id, None, f"no signing key: {reason}", revoked)

        try:
            keyring = Keyring.from_json(stored.text)
        except JwksRotatorError:
            return unusable("the keyring secret is malformed")
        if keyring.restore_hold:
            return unusable("the keyring was restored to an older version and waits for an operator to accept it "
                            "(publish --accept-restore)")
        active = keyring.active
        if active is None:
            return unusable("the keyring has no active key")
        if active.kid in revoked or active.kid in keyring.revoked_kids():
            return unusable(f"the active key {active.kid} is revoked")
        if active.published_at is None:
            return unusable("the active key has not been published")
        try:
            key = make_signing_key(active, self._rotation_period, reuse=previous, vault=self._vault)
        except (KeyringError, UnsupportedAlgorithmError, SigningUnavailableError):
            return unusable(f"the active key {active.kid} cannot be loaded")
        return _Entry(version_id, key, "", revoked)

    def _notify(self, trigger: str, outcome: str, key: SigningKey | None, reason: str) -> None:
        if self._listener is not None:
            self._listener(trigger, outcome, key, reason)


def _failure_reason(exc: Exception) -> str:
    """A failed read named by its ``StoreError`` reason (an AWS code), else by the exception's type only."""
    return exc.reason if isinstance(exc, StoreError) and exc.reason else type(exc).__name__


def encode_jws(key: SigningKey, claims: Mapping[str, Any]) -> str:
    """The compact JWS of ``claims`` under ``key``; refuses tokens over :data:`MAX_TOKEN_BYTES` before signing.

    Raises ``ValueError`` (NaN, over-long integers) or ``UnicodeEncodeError``
    (lone surrogates) for claims JSON cannot carry; callers validate first.
    """
    payload = b64url(_encode_json(claims).encode("utf-8"))
    signing_input = key.signing_prefix + payload
    if len(signing_input) + 1 + key.signature_chars > MAX_TOKEN_BYTES:
        raise PayloadTooLargeError(f"the token would exceed {MAX_TOKEN_BYTES} bytes")
    return (signing_input + b"." + b64url(key.sign(signing_input))).decode("ascii")


class TokenSigner:
    """Validates requests, picks the cached active key and issues tokens."""

    def __init__(
        self,
        settings: Settings,
        reader: KeyringReader,
        *,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        listener: RefreshListener | None = None,
        revocations: RevocationReader | None = None,
        vault: KeySigner | None = None,
    ) -> None:
        """``clock`` (wall) dates tokens; ``monotonic`` times the cache; ``revocations`` (the wiring always passes
        one) lists kids that never sign; ``vault`` signs with keys in KMS custody."""
        settings.require("issuer", "signing_secret_id" if not settings.keyring_secret_id else "keyring_secret_id")
        self.policy = TokenPolicy.from_settings(settings)
        self.cache = KeyCache(
            reader,
            ttl=settings.signer_cache_ttl.total_seconds(),
            rotation_period=settings.rotation_period.total_seconds(),
            listener=listener,
            revocations=revocations,
            monotonic=monotonic,
            vault=vault,
        )
        self._clock = clock

    def issue(self, payload: Any) -> IssuedToken:
        """Validate ``payload`` against the stack's limits and sign a token; refusals raise a :class:`JwksRotatorError`."""
        return self.sign(parse_request(payload, self.policy))

    def sign(self, request: TokenRequest, *, azp: str | None = None) -> IssuedToken:
        """Sign a validated request with the cached active key (``azp``: the issuance profile's name)."""
        now = self._clock()
        key = self.cache.get(now)
        if request.ttl > key.max_ttl:
            # This signer's max-token-ttl is above what the key records: a raised setting no rotator tick has recorded
            # yet. The key's retention follows its record, so a longer token could outlive the key in the JWKS.
            raise TtlTooLongError(f"'ttl' may be at most {int(key.max_ttl)} seconds until the rotator records the raised max-token-ttl")
        iat = int(now)
        jti = b64url(os.urandom(16)).decode("ascii")  # secrets.token_urlsafe(16) without its four Python calls
        claims = build_claims(request, self.policy, iat, jti, azp)
        try:
            try:
                token = encode_jws(key, claims)
            except SigningKeyDisabledError:  # KMS custody: revoked or handed over; read the keyring once, then fail closed
                key = self.cache.reread_after_refusal(key)
                if request.ttl > key.max_ttl:
                    raise TtlTooLongError(f"'ttl' may be at most {int(key.max_ttl)} seconds until the rotator records the raised max-token-ttl") from None
                try:
                    token = encode_jws(key, claims)
                except SigningKeyDisabledError:
                    raise SigningUnavailableError(f"no signing key: the key vault refused the active key {key.kid} (disabled)") from None
        except (ValueError, UnicodeError):
            # UnicodeEncodeError is a ValueError; sub and aud were checked, so it is in the claims.
            raise InvalidClaimsError(_UNENCODABLE) from None
        return from_fields(IssuedToken, (token, key.kid, key.alg, jti, request.aud, request.ttl, iat + request.ttl))

    def handle(self, payload: Any) -> Outcome:
        """Answer one request; never raises, never returns a partial token."""
        try:
            issued = self.issue(payload)
        except JwksRotatorError as exc:
            return Outcome(exc.to_dict(), error=exc)
        except Exception as exc:  # the impossible: keep the contract, hide the details
            error = JwksRotatorError("the token could not be issued because of an internal error")
            return Outcome(error.to_dict(), error=error, cause=type(exc).__name__)
        return Outcome(issued.response(), issued=issued)

