"""The issuance policy: which AWS roles may obtain which tokens (deny by default; pure, no I/O).

A YAML (or JSON) document of named profiles; its key names are public interface: ``callers`` (IAM role ARN
patterns, ``*`` in the role name only), ``audiences``, ``subjects`` (full-match regular expressions), ``claims``
(extra claim names a request may set), ``max_ttl`` and ``disabled``, plus a top-level ``disabled``.

Subject patterns that could backtrack catastrophically are refused at load (Python's ``re`` has no timeout).
:meth:`IssuancePolicy.authorize` answers with the first failing check: caller, chosen profile, audience, subject,
claims, ttl. Each token carries ``azp`` = the profile's name.

Design (the document's format, the pattern rules and the evaluation order): docs/design/issuance-policy.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from jwks_rotator.core.callers.principals import CallerIdentity, compile_caller_pattern, role_matches
from jwks_rotator.core.durations import parse_duration
from jwks_rotator.core.errors import (
    AudienceNotAllowedError,
    CallerNotAllowedError,
    ClaimsNotAllowedError,
    ConfigurationError,
    InvalidRequestError,
    SubjectNotAllowedError,
    TtlTooLongError,
)
from jwks_rotator.core.issuance.limits import TokenRequest, from_fields

with warnings.catch_warnings():  # the parser behind re; the deprecated alias is the typed one
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants
    import sre_parse

PROFILE_FIELD = "profile"
"""The sign request's optional top-level field naming the profile to use."""


class _NullProfile:
    """A request's ``"profile": null``: present, and of the wrong type."""


NULL_PROFILE: Any = _NullProfile()

MAX_POLICY_CHARS = 256 * 1024
MAX_PATTERN_CHARS = 256
MAX_SUBJECT_CHARS = 256
MAX_REMEMBERED_ROLES = 1024
MAX_VARIABLE_QUANTIFIERS = 2
"""Quantifiers whose count varies (*, +, ?, {m,n}) per subject pattern: two keep the worst full match of a 256-character
subject near O(n^2) (about 0.6 ms measured; three cost up to 90 ms)."""
RESERVED_PROFILE_CLAIMS = frozenset({"iss", "iat", "nbf", "exp", "jti", "sub", "aud", "azp"})

_TOP_KEYS = frozenset({"profiles", "disabled"})
_PROFILE_KEYS = frozenset({"callers", "audiences", "subjects", "claims", "max_ttl", "disabled"})
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CLAIM_NAME = re.compile(r"[\x21-\x7e]{1,64}")
_UNICODE_OPT_IN = re.compile(r"\(\?[imsx]*u[imsx]*\)")
"""A subject pattern opening with an inline flag group naming ``u``: Unicode meanings, by explicit choice."""
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", sre_constants.MAX_REPEAT)}
_REFUSED_OPS = {sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS, sre_constants.ASSERT, sre_constants.ASSERT_NOT}


_CLAIM_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "boolean": lambda v: type(v) is bool,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}
_CLAIM_LIMIT_KEYS = frozenset({"type", "values", "patterns"})


@dataclass(frozen=True)
class ClaimLimit:
    """What values one claim may take: a JSON type, a list of values and/or full-match patterns (strings only).

    For ``type: array`` the values and patterns apply to every element. With both ``values`` and ``patterns``, a
    value passes when either allows it.
    """

    type: str | None
    values: tuple[Any, ...] | None
    patterns: tuple[re.Pattern[str], ...] | None

    def allows(self, value: Any) -> bool:
        if self.type is not None and not _CLAIM_TYPES[self.type](value):
            return False
        items = value if self.type == "array" else [value]
        return all(self._allows_one(item) for item in items)

    def _allows_one(self, item: Any) -> bool:
        if self.values is None and self.patterns is None:
            return True
        if self.values is not None and any(type(item) is type(allowed) and item == allowed for allowed in self.values):
            return True
        return self.patterns is not None and type(item) is str and any(p.fullmatch(item) for p in self.patterns)


@dataclass(frozen=True)
class Profile:
    """One profile: who may call (compiled role patterns) and what it may obtain; ``max_ttl`` in seconds."""

    name: str
    callers: tuple[str, ...]
    caller_patterns: tuple[re.Pattern[str], ...]
    audiences: frozenset[str]
    subjects: tuple[re.Pattern[str], ...]
    claims: frozenset[str]
    max_ttl: int
    disabled: bool
    claim_limits: Mapping[str, ClaimLimit] = field(default_factory=dict)  # the opt-in form: limits on a claim's values

    def matches(self, identity: CallerIdentity) -> bool:
        """True when the identity is a session of a role this profile names (users and root never are)."""
        return role_matches(self.caller_patterns, identity)


class Decision(NamedTuple):
    """What may be issued: the profile (its name is the token's ``azp``) and the lifetime in seconds."""

    profile: Profile
    ttl: int

    @property
    def azp(self) -> str:
        return self.profile.name


class SignPayload(NamedTuple):
    """A sign request split into the token fields ``parse_request`` reads and the identity fields."""

    request: Any
    proof: Any
    profile: Any
    ttl_given: bool


def split_sign_payload(payload: Any) -> SignPayload:
    """Take ``proof`` and ``profile`` out of a sign request; anything not an object is passed on for ``parse_request`` to refuse."""
    if type(payload) is not dict:
        return SignPayload(payload, None, None, False)
    request = dict(payload)  # a copy, then two removals: a third of a comprehension's cost, once per token
    request.pop("proof", None)
    request.pop(PROFILE_FIELD, None)
    profile = payload.get(PROFILE_FIELD)
    if profile is None and PROFILE_FIELD in payload:
        profile = NULL_PROFILE  # "profile": null is a wrong type, not an absent field
    return from_fields(SignPayload, (request, payload.get("proof"), profile, "ttl" in payload))


@dataclass(frozen=True)
class IssuancePolicy:
    """A loaded, validated policy; ``digest`` (sha256 of the canonical document) identifies it in audit lines."""

    profiles: tuple[Profile, ...]
    disabled: bool
    digest: str
    default_ttl: int
    _by_role: dict[str | None, tuple[Profile, ...]] = field(default_factory=dict, compare=False, repr=False)

    def profiles_for(self, identity: CallerIdentity) -> tuple[Profile, ...]:
        """The enabled profiles whose callers match the identity (none while the policy is disabled).

        Matching depends only on the role, and a policy never changes once
        loaded: the answer is remembered per role (bounded by the callers seen).
        """
        if self.disabled:
            return ()
        role = identity.role_arn
        matching = self._by_role.get(role)
        if matching is None:
            matching = tuple(profile for profile in self.profiles if not profile.disabled and profile.matches(identity))
            if len(self._by_role) >= MAX_REMEMBERED_ROLES:
                self._by_role.clear()
            self._by_role[role] = matching
        return matching

    def require_audiences_within(self, allowed: frozenset[str]) -> None:
        """Refuse a policy whose profiles list an audience outside the stack's ``allowed-audiences`` (when that is set)."""
        if not allowed:
            return
        for profile in self.profiles:
            outside = sorted(profile.audiences - allowed)
            if outside:
                raise ConfigurationError(
                    f"issuance policy: profile {profile.name!r} lists audience(s) outside allowed-audiences: {', '.join(outside)}"
                )

    def require_caller(self, identity: CallerIdentity) -> tuple[Profile, ...]:
        """The caller's enabled profiles; none at all is ``caller_not_allowed`` (checked before the request's shape)."""
        matching = self.profiles_for(identity)
        if not matching:
            reason = "issuance_disabled" if self.disabled else "no_profile"
            raise CallerNotAllowedError("the caller is not allowed to obtain tokens", reason=reason)
        return matching

    def choose_profile(self, identity: CallerIdentity, profile: Any = None) -> Profile:
        """The profile a request runs under: the one it names, or the caller's only one."""
        return self.choose_among(self.require_caller(identity), profile)

    @staticmethod
    def choose_among(matching: tuple[Profile, ...], profile: Any = None) -> Profile:
        """:meth:`choose_profile` over the caller's profiles already found by :meth:`require_caller` (one lookup per request)."""
        if profile is not None:
            if type(profile) is not str or not profile.strip():
                raise InvalidRequestError("'profile' must be a non-blank string")
            chosen = next((candidate for candidate in matching if candidate.name == profile), None)
            if chosen is None:
                raise CallerNotAllowedError("the caller is not allowed to use the named profile", reason="profile_not_matched")
            return chosen
        if len(matching) > 1:
            names = ", ".join(candidate.name for candidate in matching)
            raise InvalidRequestError(f"the caller matches several profiles ({names}): name one in 'profile'")
        return matching[0]

    def check(self, chosen: Profile, request: TokenRequest, *, ttl_given: bool = True) -> Decision:
        """The profile's limits, in order: audience, subject, claims, ttl; the first failing check raises.

        ``ttl_given`` says whether the request set ``ttl`` (when it did not,
        the lifetime is the smaller of the stack default and the profile's
        ``max_ttl`` instead of a refusal).
        """
        # Plain loops, not all()/any() over generators: this runs once per token (a generator costs ~0.3 µs to start).
        aud = request.aud
        allowed = chosen.audiences
        if isinstance(aud, str):
            if aud not in allowed:
                raise AudienceNotAllowedError("an audience in the request is not allowed for this profile")
        else:
            for audience in aud:
                if audience not in allowed:
                    raise AudienceNotAllowedError("an audience in the request is not allowed for this profile")
        sub = request.sub
        if len(sub) > MAX_SUBJECT_CHARS:
            raise SubjectNotAllowedError(f"'sub' may be at most {MAX_SUBJECT_CHARS} characters", reason="subject_too_long")
        for pattern in chosen.subjects:
            if pattern.fullmatch(sub):
                break
        else:
            raise SubjectNotAllowedError("'sub' is not allowed for this profile", reason="subject_not_matched")
        claims = request.claims
        if not chosen.claims.issuperset(claims):
            raise ClaimsNotAllowedError("the request sets a claim this profile does not allow", reason="claim_not_listed")
        for name, limit in chosen.claim_limits.items():
            if name in claims and not limit.allows(claims[name]):
                # The claim's name only: a claim value never reaches a message or a log.
                raise ClaimsNotAllowedError(f"claim {name!r} has a value this profile does not allow", reason="claim_value_not_allowed")
        if ttl_given:
            if request.ttl > chosen.max_ttl:
                raise TtlTooLongError(f"'ttl' may be at most {chosen.max_ttl} seconds for this profile")
            return from_fields(Decision, (chosen, request.ttl))
        return Decision(chosen, min(self.default_ttl, chosen.max_ttl))

    def authorize(self, identity: CallerIdentity, request: TokenRequest, *, profile: Any = None, ttl_given: bool = True) -> Decision:
        """Decide a request already validated by ``limits.parse_request``: caller, profile, then limits.

        ``profile`` is the request's raw ``profile`` field (``None`` when absent).
        """
        return self.check(self.choose_profile(identity, profile), request, ttl_given=ttl_given)

def load_issuance_policy(text: str, *, max_token_ttl: int, default_token_ttl: int) -> IssuancePolicy:
    """Parse and validate a policy (YAML, or JSON when it starts with ``{``); faults raise ``invalid_configuration``.

    ``max_token_ttl`` and ``default_token_ttl`` are the stack's settings in
    seconds (``TokenPolicy.max_ttl`` / ``default_ttl``).
    """
    if type(text) is not str or not text.strip():
        raise ConfigurationError("issuance policy: the document is empty")
    if len(text) > MAX_POLICY_CHARS:
        raise ConfigurationError(f"issuance policy: the document exceeds {MAX_POLICY_CHARS} characters")
    document = policy_document(text)
    if type(document) is not dict:
        raise ConfigurationError("issuance policy: the document must be a mapping with a 'profiles' key")
    _refuse_unknown(document, _TOP_KEYS, "issuance policy")
    disabled = _flag(document, "disabled", "issuance policy")
    raw_profiles = document.get("profiles", {})
    if type(raw_profiles) is not dict:
        raise ConfigurationError("issuance policy: 'profiles' must be a mapping of profile names to profiles")
    if not raw_profiles and not disabled:
        raise ConfigurationError("issuance policy: 'profiles' is empty; a policy that issues nothing is written 'disabled: true'")
    profiles = tuple(_profile(name, body, max_token_ttl) for name, body in raw_profiles.items())
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return IssuancePolicy(profiles, disabled, hashlib.sha256(canonical.encode()).hexdigest(), default_token_ttl)


def policy_document(text: str) -> Any:
    """The parsed policy document, as :func:`load_issuance_policy` reads it (JSON when it starts with ``{``, else YAML;
    a repeated key refused), before any rule is checked. ``make build`` uses it to ship a YAML policy as the same
    document in JSON, which the function then reads without importing PyYAML."""
    return _load_json(text) if text.lstrip().startswith("{") else _load_yaml(text)


def _load_json(text: str) -> Any:
    def pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ConfigurationError("issuance policy: a mapping repeats a key")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=pairs_without_duplicates)
    except ValueError as exc:
        raise ConfigurationError(f"issuance policy: not valid JSON (line {getattr(exc, 'lineno', '?')})") from None


def _load_yaml(text: str) -> Any:
    # Measured reason: PyYAML costs ~8 ms of imports (python -X importtime); the built sign function ships its policy
    # as JSON and never loads it (tests/template/test_built_artifact.py checks the built function's modules).
    import yaml  # type: ignore[import-untyped]

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader_type: Any = type("_PolicyLoader", (base,), {})

    def mapping_without_duplicates(loader: Any, node: Any) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        pairs = loader.construct_pairs(node, deep=True)
        try:
            keys = {key for key, _ in pairs}
        except TypeError:
            raise ConfigurationError("issuance policy: a mapping key is not a plain value") from None
        if len(keys) != len(pairs):
            raise ConfigurationError("issuance policy: a mapping repeats a key")
        return dict(pairs)

    loader_type.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping_without_duplicates)
    try:
        return yaml.load(text, Loader=loader_type)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigurationError(f"issuance policy: not valid YAML{where}") from None


def _refuse_unknown(mapping: dict[Any, Any], allowed: frozenset[str], where: str) -> None:
    unknown = [key for key in mapping if key not in allowed]
    if unknown:
        names = ", ".join(sorted(repr(key)[:40] for key in unknown))
        raise ConfigurationError(f"{where}: unknown key(s) {names}; allowed: {', '.join(sorted(allowed))}")


def _flag(mapping: dict[str, Any], key: str, where: str) -> bool:
    value = mapping.get(key, False)
    if type(value) is not bool:
        raise ConfigurationError(f"{where}: '{key}' must be true or false")
    return value


def _strings(body: dict[str, Any], key: str, where: str, *, required: bool) -> list[str]:
    if key not in body:
        if required:
            raise ConfigurationError(f"{where}: '{key}' is required")
        return []
    value = body[key]
    if type(value) is not list or not all(type(item) is str and item for item in value):
        raise ConfigurationError(f"{where}.{key}: must be a list of non-empty strings")
    if required and not value:
        raise ConfigurationError(f"{where}.{key}: must not be empty (an empty list would allow nothing)")
    if len(set(value)) != len(value):
        raise ConfigurationError(f"{where}.{key}: lists an entry twice")
    return value


def _profile(name: Any, body: Any, stack_max_ttl: int) -> Profile:
    if type(name) is not str or not _PROFILE_NAME.fullmatch(name):
        raise ConfigurationError("issuance policy: profile names must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    where = f"issuance policy: profiles.{name}"
    if type(body) is not dict:
        raise ConfigurationError(f"{where}: must be a mapping")
    _refuse_unknown(body, _PROFILE_KEYS, where)
    callers = _strings(body, "callers", where, required=True)
    audiences = _strings(body, "audiences", where, required=True)
    subjects = _strings(body, "subjects", where, required=True)
    claim_limits: dict[str, ClaimLimit] = {}
    if type(body.get("claims")) is dict:  # the opt-in form: {name: null | {type, values, patterns}}
        claims = list(body["claims"])
        if not all(type(claim) is str and claim for claim in claims):
            raise ConfigurationError(f"{where}.claims: claim names must be non-empty strings")
        for claim_name, raw in body["claims"].items():
            limit = _claim_limit(raw, f"{where}.claims.{claim_name[:64]}")
            if limit is not None:
                claim_limits[claim_name] = limit
    else:
        claims = _strings(body, "claims", where, required=False)
    for claim in claims:
        if not _CLAIM_NAME.fullmatch(claim):
            raise ConfigurationError(f"{where}.claims: claim names are 1-64 printable ASCII characters without spaces")
        if claim in RESERVED_PROFILE_CLAIMS:
            raise ConfigurationError(f"{where}.claims: {claim!r} is set by the signer, not by a request")
    max_ttl = stack_max_ttl
    if "max_ttl" in body:
        if type(body["max_ttl"]) is bool or not isinstance(body["max_ttl"], (int, float, str)):
            raise ConfigurationError(f"{where}.max_ttl: must be a duration such as 900, 15m or 1h")
        seconds = parse_duration(body["max_ttl"], name=f"{where}.max_ttl").total_seconds()
        if seconds < 1 or not float(seconds).is_integer():
            raise ConfigurationError(f"{where}.max_ttl: must be a whole number of seconds, at least 1")
        if seconds > stack_max_ttl:
            raise ConfigurationError(f"{where}.max_ttl: exceeds the stack's max-token-ttl ({stack_max_ttl} s)")
        max_ttl = int(seconds)
    return Profile(
        name=name,
        callers=tuple(callers),
        caller_patterns=tuple(compile_caller_pattern(caller, f"{where}.callers[{index}]") for index, caller in enumerate(callers)),
        audiences=frozenset(audiences),
        subjects=tuple(compile_subject_pattern(subject, f"{where}.subjects[{index}]") for index, subject in enumerate(subjects)),
        claims=frozenset(claims),
        max_ttl=max_ttl,
        disabled=_flag(body, "disabled", where),
        claim_limits=claim_limits,
    )


def _claim_limit(raw: Any, where: str) -> ClaimLimit | None:
    """One claim's limits (None: any value, as in the list form); a malformed one is ``invalid_configuration``."""
    if raw is None:
        return None
    if type(raw) is not dict or not raw:
        raise ConfigurationError(f"{where}: must be null (any value) or a mapping with type, values and/or patterns")
    _refuse_unknown(raw, _CLAIM_LIMIT_KEYS, where)
    kind = raw.get("type")
    if kind is not None and kind not in _CLAIM_TYPES:
        raise ConfigurationError(f"{where}.type: one of {', '.join(_CLAIM_TYPES)}")
    values = raw.get("values")
    if values is not None and (
        type(values) is not list or not values or not all(type(v) in (str, int, float, bool) for v in values)
    ):
        raise ConfigurationError(f"{where}.values: a non-empty list of strings, numbers or booleans")
    patterns = raw.get("patterns")
    if patterns is not None and (type(patterns) is not list or not patterns or not all(type(p) is str and p for p in patterns)):
        raise ConfigurationError(f"{where}.patterns: a non-empty list of full-match patterns")
    if kind in ("object",) and (values is not None or patterns is not None):
        raise ConfigurationError(f"{where}: values and patterns limit strings, numbers, booleans or an array's elements")
    return ClaimLimit(
        kind,
        tuple(values) if values is not None else None,
        tuple(compile_subject_pattern(p, f"{where}.patterns[{i}]") for i, p in enumerate(patterns)) if patterns is not None else None,
    )


def compile_subject_pattern(pattern: str, where: str = "subject pattern") -> re.Pattern[str]:
    """Compile a subject pattern, refusing one that could backtrack catastrophically (rules in the module docstring)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ConfigurationError(f"{where}: longer than {MAX_PATTERN_CHARS} characters")
    try:
        # ASCII meanings (\d, \w, \s, \b and (?i) case folding) unless the pattern opens with an explicit (?u...).
        compiled = re.compile(pattern) if _UNICODE_OPT_IN.match(pattern) else re.compile(pattern, re.ASCII)
        tree = sre_parse.parse(pattern)
    except re.error:
        raise ConfigurationError(f"{where}: not a valid regular expression") from None
    if _count_variable_quantifiers(tree, where, repeated=False, variable=False) > MAX_VARIABLE_QUANTIFIERS:
        raise ConfigurationError(f"{where}: more than {MAX_VARIABLE_QUANTIFIERS} variable quantifiers (could backtrack for too long)")
    return compiled


def _count_variable_quantifiers(items: Any, where: str, *, repeated: bool, variable: bool) -> int:
    """Walk a parsed pattern; ``repeated``/``variable``: inside a quantifier that repeats (max > 1) / varies (min != max)."""
    count = 0
    for op, argument in items:
        if op in _REFUSED_OPS:
            raise ConfigurationError(f"{where}: backreferences, conditionals and lookarounds are not allowed")
        if op in _REPEATS:
            low, high, body = argument
            varies = low != high
            if repeated and varies:
                raise ConfigurationError(f"{where}: a quantifier inside a repeated group could backtrack catastrophically")
            count += varies
            count += _count_variable_quantifiers(body, where, repeated=repeated or high > 1, variable=variable or (varies and high > 1))
        elif op == sre_constants.BRANCH:
            # Under any repeat, even a fixed count ({n}), each copy of an alternation is a choice point: a failing
            # match backtracks through about 2^n paths. (Single-character alternations become a class and pass.)
            if repeated or variable:
                raise ConfigurationError(f"{where}: an alternation under a quantifier could backtrack catastrophically; use a character class")
            for branch in argument[1]:
                count += _count_variable_quantifiers(branch, where, repeated=repeated, variable=variable)
        elif op == sre_constants.SUBPATTERN:
            count += _count_variable_quantifiers(argument[-1], where, repeated=repeated, variable=variable)
        elif op == getattr(sre_constants, "ATOMIC_GROUP", None):
            count += _count_variable_quantifiers(argument, where, repeated=repeated, variable=variable)
    return count
