"""What the soak records: tokens, JWKS samples, ticks, convergence after faults, verifications; and the shared store of them."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from jwks_rotator.core.keys.keyring import Keyring


@dataclass
class TokenRecord:
    seq: int
    kid: str
    issued_start: float
    issued_end: float
    exp: int
    token: str = field(repr=False)


@dataclass(frozen=True)
class Sample:
    start: float
    end: float
    kids: frozenset[str]
    digest: str


@dataclass(frozen=True)
class TickRecord:
    rotator: str  # main | b
    start: float
    end: float
    ok: bool
    error: str = ""
    skipped: bool = False  # answered "skipped": another tick completed within half the schedule, so it did nothing


@dataclass
class ConvergeRecord:
    episode: str
    faults_stopped: float
    first_tick_end: float | None = None
    within_one_tick: bool = False
    converged_at: float | None = None
    ticks: int = 0
    edge_caught_up: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.converged_at is None else self.converged_at - self.faults_stopped


@dataclass(frozen=True)
class Verification:
    library: str
    moment: str
    due: float
    start: float
    end: float
    exp: int
    ok: bool
    reason: str = ""
    kid: str = ""

    @property
    def unexpired_refusal(self) -> bool:
        """A refusal of a token that had not expired when it was checked (the soak's one unforgivable outcome)."""
        if self.ok:
            return False
        if self.start >= self.exp:
            return False  # checked after expiry: any refusal is right
        return not (self.reason == "expired" and self.end >= self.exp)


@dataclass
class Observations:
    """Everything one run saw, shared by its threads: change it only while holding :attr:`lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    tokens: list[TokenRecord] = field(default_factory=list)
    sign_refusals: Counter[str] = field(default_factory=Counter)
    unavailable_reasons: Counter[str] = field(default_factory=Counter)  # signing_unavailable by the function's message
    invoke_errors: Counter[str] = field(default_factory=Counter)
    verifications: list[Verification] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    sample_errors: Counter[str] = field(default_factory=Counter)
    ticks: list[TickRecord] = field(default_factory=list)
    converges: list[ConvergeRecord] = field(default_factory=list)
    scenarios: Counter[str] = field(default_factory=Counter)
    key_history: dict[str, dict[str, float | None]] = field(default_factory=dict)  # kid -> activated/retired/published (unix)
    latest_keyring: Keyring | None = None

    def count(self, kind: str) -> None:
        """One more of a scenario (an episode begun, a rotator killed)."""
        with self.lock:
            self.scenarios[kind] += 1

    def note_keyring(self, keyring: Keyring) -> None:
        """Keep the latest keyring and the first time each key was seen activated, retired and published."""
        with self.lock:
            self.latest_keyring = keyring
            for key in keyring.keys:
                entry = self.key_history.setdefault(key.kid, {"activated": None, "retired": None, "published": None})
                for name, value in (("activated", key.activated_at), ("retired", key.retired_at), ("published", key.published_at)):
                    if value is not None and entry[name] is None:
                        entry[name] = value.timestamp()
