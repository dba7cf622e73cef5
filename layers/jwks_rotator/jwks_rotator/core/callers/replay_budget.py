"""How many new proofs the signer replays to STS: one budget per verified credential, one fair budget for the rest.

A proof that passes the local checks costs nothing to forge, so the budget a new proof draws from must be chosen by
something a forger cannot have:

* **Known credentials.** Once STS vouched for a proof signed with a session credential, the credential is remembered
  by a sha256 of its access key id *and its session token* (the token is secret-bound: only a holder of the credential
  has it; the access key id alone is public). Each such credential has its own bucket (``known_rate`` a second, bursts
  of ``known_burst``): a forger naming the same access key id without the token, or any other key, never draws from
  it, and one credential's holder cannot drain another's. Proofs signed with long-term keys (no session token) are
  never "known".
* **Everything else** (first proofs, forged proofs, long-term keys, a known credential past its own bucket) shares one
  bucket (``rate`` a second, bursts of ``burst``), entered by an equal-chance draw once the arrivals of the previous
  (or current) second exceed ``max(rate, burst)``: each arrival is admitted with probability ``rate / arrivals``, so a
  flood arriving first cannot take every token before a new caller's proof. Under a flood of F proofs a second, a new
  caller retrying once a second is admitted on each try with probability at least about ``rate / (F + 1)``; see
  docs/security-model.md for the numbers.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Callable

from jwks_rotator.core.errors import ConfigurationError

DEFAULT_KNOWN_RATE = 0.2
"""New proofs a second a known credential may have replayed (a client re-signs about once per proof lifetime)."""

DEFAULT_KNOWN_BURST = 5
"""New proofs a known credential may have replayed at once (processes sharing one session credential)."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved; starts full."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._rate, self._burst, self._tokens, self._at = rate, burst, burst, now

    @property
    def burst(self) -> float:
        return self._burst

    def take(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + max(0.0, now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def credential_digest(access_key_id: str, session_token: str | None) -> str | None:
    """The key of a session credential's own budget, or None for a long-term key (no secret-bound part to key on)."""
    if not access_key_id or not session_token:
        return None
    return hashlib.sha256(f"{access_key_id}\n{session_token}".encode()).hexdigest()


class ReplayBudget:
    """Decides whether a new (uncached) proof may be replayed now; not thread-safe (the verifier holds its lock).

    ``random`` is a uniform [0, 1) source (injected so tests are repeatable).
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        now: float,
        known_rate: float = DEFAULT_KNOWN_RATE,
        known_burst: int = DEFAULT_KNOWN_BURST,
        max_known: int = 1024,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        if rate <= 0 or burst < 1 or known_rate <= 0 or known_burst < 1 or max_known < 1:
            raise ConfigurationError("caller proof: the replay rates, bursts and the number of known credentials must be positive")
        self._rate = rate
        self._draw_above = max(rate, float(burst))  # below it the bucket alone serves every arrival
        self._shared = TokenBucket(rate, float(burst), now)
        self._known_rate, self._known_burst, self._max_known = known_rate, float(known_burst), max_known
        self._known: OrderedDict[str, TokenBucket] = OrderedDict()
        self._random = random_source
        self._second = int(now)
        self._arrivals = 0  # unverified arrivals this second
        self._previous = 0  # ... and in the second before

    def admit(self, credential: str | None, now: float) -> bool:
        """True when a new proof signed with ``credential`` (a :func:`credential_digest`, or None) may be replayed."""
        own = self._known.get(credential) if credential is not None else None
        if own is not None:
            self._known.move_to_end(credential)  # type: ignore[arg-type]
            if own.take(now):
                return True
        return self._admit_shared(now)

    def remember(self, credential: str | None, now: float) -> None:
        """Record a credential STS vouched for (least recently used forgotten past ``max_known``)."""
        if credential is None:
            return
        if credential in self._known:
            self._known.move_to_end(credential)
            return
        self._known[credential] = TokenBucket(self._known_rate, self._known_burst, now)
        while len(self._known) > self._max_known:
            self._known.popitem(last=False)

    def reset(self, now: float) -> None:
        """Forget every known credential and refill the shared bucket from ``now`` (a restored or forked copy)."""
        self._shared = TokenBucket(self._rate, self._shared.burst, now)
        self._known.clear()
        self._second, self._arrivals, self._previous = int(now), 0, 0

    def _admit_shared(self, now: float) -> bool:
        second = int(now)
        if second != self._second:
            self._previous = self._arrivals if second == self._second + 1 else 0
            self._second, self._arrivals = second, 0
        self._arrivals += 1
        load = max(self._previous, self._arrivals)
        if load > self._draw_above and self._random() >= self._rate / load:
            return False
        return self._shared.take(now)
