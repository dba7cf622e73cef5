"""Verify a caller's proof: local checks, then one replay to STS per proof, cached (no I/O of its own).

:class:`CallerVerifier` parses a proof (:mod:`jwks_rotator.core.callers.proof`), and replays it through an
:class:`~jwks_rotator.core.ports.IdentityReplayer` port only when this container has not seen it yet: a warm caller
that reuses its proof costs no STS call.

* A verified proof is cached until it expires (``X-Amz-Date + max_age``, kept as a monotonic deadline). Revoking the
  caller's credentials takes effect here at the latest when the proof expires.
* A proof STS refused (4xx: SignatureDoesNotMatch, ExpiredToken, InvalidClientTokenId, AccessDenied, ...) is cached as
  refused for the same window, so a bad proof sent again costs nothing either.
* Replays of new proofs are bounded by a :class:`~.replay_budget.ReplayBudget`: each session credential STS vouched
  for has its own bucket, keyed on its access key id and session token (a forger naming the key id has no token);
  everything else shares one bucket (``rate_per_second``, ``burst``) entered by an equal-chance draw under load. Past
  it a new proof is refused as ``unauthenticated`` (reason ``rate_limited``) and not cached.
* STS throttling, 5xx or a transport failure is ``signing_unavailable`` and not cached: the caller may retry.
* The cache holds at most ``cache_size`` proofs and evicts the oldest.
* Invocations running at once on threads share one verifier: the caches and the buckets change under one lock (the
  replay itself runs outside it). :meth:`CallerVerifier.forget` drops every verified proof and refusal and restarts
  the buckets (a copy restored from a snapshot, or a forked process).
"""

from __future__ import annotations

import random
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from jwks_rotator.core.callers.principals import CallerIdentity, identity_from_arn
from jwks_rotator.core.callers.proof import CallerProof, parse_caller_proof
from jwks_rotator.core.callers.replay_budget import DEFAULT_KNOWN_BURST, DEFAULT_KNOWN_RATE, ReplayBudget, credential_digest
from jwks_rotator.core.errors import ConfigurationError, SigningUnavailableError, UnauthenticatedError

if TYPE_CHECKING:  # the port is an annotation here: the sign path loads core.ports for a KMS key only
    from jwks_rotator.core.ports import IdentityReplayer

STS_MAX_SKEW = 900.0
"""STS refuses a request whose X-Amz-Date is 15 minutes off; a proof's window must fit in it."""

STS_THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"})

_SAFE_CODE = re.compile(r"[A-Za-z.]{1,64}")


class ReplayAnswer(NamedTuple):
    """STS's answer to a replayed proof: the HTTP status and either the caller's ARN or STS's error code."""

    status: int
    arn: str | None = None
    error_code: str | None = None


class _Entry(NamedTuple):  # NamedTuples, not dataclasses: a tenth of the class creation cost at INIT
    deadline: float
    identity: CallerIdentity | None
    reason: str


_ACCESS_KEY = re.compile(r"Credential=([A-Z0-9]{16,128})/")


class _Verified(NamedTuple):
    """A proof already verified, by its exact contents: who it proved, for which signer, until when."""

    identity: CallerIdentity
    signer: str
    deadline: float  # monotonic
    expires_at: float  # wall clock: the proof's own window


def _exact_contents(raw: object) -> tuple[object, ...] | None:
    """A copy of a proof's headers and body exactly as presented (a tuple, hashed once by the lookup), or None when
    it is not of that shape."""
    if type(raw) is not dict or len(raw) != 2:
        return None
    headers, body = raw.get("headers"), raw.get("body")
    if type(headers) is not dict or type(body) is not str:
        return None
    # The body, the n header names in order, then their n values: one flat tuple (its length gives n), so no pair is
    # made and hashed per header. Hashable unless a header value is not: the caller's lookup catches that.
    return (body, *headers, *headers.values())


class CallerVerifier:
    """Turns a raw proof into a :class:`CallerIdentity`, replaying each distinct proof to STS at most once.

    ``on_event`` (optional) is called with ``"cache_hit"``, ``"replayed"``,
    ``"refused"``, ``"refused_cached"``, ``"rate_limited"`` or
    ``"sts_unavailable"``, for metrics.
    """

    def __init__(
        self,
        replayer: IdentityReplayer,
        *,
        wall_clock: Callable[[], float],
        monotonic_clock: Callable[[], float],
        max_age: float,
        leeway: float,
        sts_host: str,
        sts_region: str,
        rate_per_second: float = 20.0,
        burst: int = 40,
        cache_size: int = 1024,
        known_rate: float = DEFAULT_KNOWN_RATE,
        known_burst: int = DEFAULT_KNOWN_BURST,
        random_source: Callable[[], float] = random.random,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if not max_age > 0 or max_age + leeway > STS_MAX_SKEW or leeway < 0:
            raise ConfigurationError("caller proof: max-age must be positive and max-age + leeway at most 15 minutes (STS's own window)")
        if rate_per_second <= 0 or burst < 1 or cache_size < 1:
            raise ConfigurationError("caller proof: the replay rate, burst and cache size must be positive")
        if not sts_host or not sts_region:
            raise ConfigurationError("caller proof: the STS host and region must be set")
        self._replayer = replayer
        self._wall = wall_clock
        self._monotonic = monotonic_clock
        self._max_age = max_age
        self._leeway = leeway
        self._sts_host = sts_host
        self._sts_region = sts_region
        self._budget = ReplayBudget(
            rate=rate_per_second,
            burst=burst,
            now=monotonic_clock(),
            known_rate=known_rate,
            known_burst=known_burst,
            max_known=cache_size,
            random_source=random_source,
        )
        self._cache: OrderedDict[str, _Entry] = OrderedDict()  # verified identities, by canonical proof
        self._refused: OrderedDict[str, _Entry] = OrderedDict()  # refusals apart, so they never evict identities
        self._verified: OrderedDict[tuple[object, ...], _Verified] = OrderedDict()  # by exact contents, least recently used first
        self._cache_size = cache_size
        self._on_event = on_event
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every verified proof, refusal and known access key, and refill the buckets from now.

        For a copy restored from a snapshot or a forked process: its deadlines were timed on another copy's
        monotonic clock. The lock is made anew (a fork may copy it held).
        """
        self._lock = threading.Lock()
        now = self._monotonic()
        self._budget.reset(now)
        for cache in (self._cache, self._refused, self._verified):
            cache.clear()

    @property
    def cached_proofs(self) -> int:
        """How many verified proofs and refusals are cached now."""
        return len(self._cache) + len(self._refused) + len(self._verified)

    def verify(self, raw_proof: object, accepted_signers: Iterable[str]) -> CallerIdentity:
        """The caller's identity; refusals raise ``unauthenticated`` (with a ``reason``) or ``signing_unavailable``.

        A warm caller presents the very proof it presented before: that one is
        recognised by its exact contents and answered from memory, once its
        window and signer are checked again (everything else about those bytes
        was checked when they were first verified).
        """
        raw_key = _exact_contents(raw_proof)
        if raw_key is not None:
            with self._lock:
                try:
                    seen = self._verified.get(raw_key)
                except TypeError:  # a header value that cannot be hashed: not cached by its contents
                    seen = raw_key = None
                hit = (seen is not None and seen.signer in accepted_signers and self._monotonic() < seen.deadline
                       and self._wall() < seen.expires_at)
                if hit and raw_key is not None:
                    self._verified.move_to_end(raw_key)
            if hit:
                assert seen is not None
                on_event = self._on_event  # not through _emit: one call fewer on every warm token
                if on_event is not None:
                    on_event("cache_hit")
                return seen.identity
        identity = self._verify_parsed(raw_proof, accepted_signers, raw_key)
        return identity

    def _verify_parsed(self, raw_proof: object, accepted_signers: Iterable[str], raw_key: tuple[object, ...] | None) -> CallerIdentity:
        proof = parse_caller_proof(
            raw_proof,
            accepted_signers=accepted_signers,
            sts_host=self._sts_host,
            sts_region=self._sts_region,
            now=self._wall(),
            max_age=self._max_age,
            leeway=self._leeway,
        )
        with self._lock:
            entry = self._lookup(proof.cache_key)
            if entry is None and not self._budget.admit(_credential(proof), self._monotonic()):
                self._emit("rate_limited")
                raise UnauthenticatedError("too many new proofs of identity right now; retry shortly", reason="rate_limited")
        if entry is not None:
            if entry.identity is None:
                self._emit("refused_cached")
                raise UnauthenticatedError("the caller's proof of identity was refused", reason=entry.reason)
            self._emit("cache_hit")
            identity = entry.identity
            deadline = entry.deadline
        else:
            identity = self._replay(proof)
            deadline = self._monotonic() + (proof.expires_at - self._wall())
        if raw_key is not None:
            with self._lock:
                self._verified[raw_key] = _Verified(identity, proof.signer, deadline, proof.expires_at)
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        return identity

    def _replay(self, proof: CallerProof) -> CallerIdentity:
        try:
            answer = self._replayer.replay(proof)
        except SigningUnavailableError:
            self._emit("sts_unavailable")
            raise
        if answer.status == 200 and answer.arn is not None:
            try:
                identity = identity_from_arn(answer.arn)
            except UnauthenticatedError as exc:
                self._store(proof, None, exc.reason)
                raise
            self._store(proof, identity, "verified")
            self._emit("replayed")
            return identity
        code = answer.error_code or ""
        if answer.status >= 500 or answer.status == 429 or code in STS_THROTTLING_CODES or not 400 <= answer.status < 500:
            self._emit("sts_unavailable")
            raise SigningUnavailableError("the caller's identity cannot be checked right now; retry shortly")
        reason = f"sts_refused:{code if _SAFE_CODE.fullmatch(code) else 'unknown'}"
        self._store(proof, None, reason)
        self._emit("refused")
        raise UnauthenticatedError("the caller's proof of identity was refused", reason=reason)

    def _lookup(self, key: str) -> _Entry | None:
        for cache in (self._cache, self._refused):
            entry = cache.get(key)
            if entry is not None:
                if self._monotonic() >= entry.deadline:
                    del cache[key]
                    return None
                cache.move_to_end(key)
                return entry
        return None

    def _store(self, proof: CallerProof, identity: CallerIdentity | None, reason: str) -> None:
        remaining = proof.expires_at - self._wall()
        if remaining <= 0:
            return
        cache = self._cache if identity is not None else self._refused
        with self._lock:
            cache[proof.cache_key] = _Entry(self._monotonic() + remaining, identity, reason)
            cache.move_to_end(proof.cache_key)
            while len(cache) > self._cache_size:
                cache.popitem(last=False)
            if identity is not None:
                self._budget.remember(_credential(proof), self._monotonic())

    def _emit(self, event: str) -> None:
        if self._on_event is not None:
            self._on_event(event)


def _credential(proof: CallerProof) -> str | None:
    """The digest of the session credential the proof was signed with (access key id + session token), if any."""
    headers = {name.lower(): value for name, value in proof.headers}
    found = _ACCESS_KEY.search(headers.get("authorization", ""))
    return credential_digest(found.group(1), headers.get("x-amz-security-token")) if found else None
