"""Settings: one validated configuration object with documented defaults.

A setting has one name written three ways: kebab-case on the command line
(``--rotation-period``), PascalCase as a SAM template parameter
(``RotationPeriod``) and upper snake case in a Lambda environment
(``ROTATION_PERIOD``). Each setting is declared once, as a field of
:class:`Settings` made with :func:`setting`: its type, its default as
written, its parser, its meaning and how the stack gives it to the functions
(a :class:`Parameter` or a :class:`StackValue`). :data:`SETTINGS` is the table
derived from those fields: the CLI's options follow it, and ``make settings``
writes the template's parameters and environment entries and docs/settings.md
from it (docs/design/settings.md).
"""

# ruff: noqa: RUF009 - setting() is dataclasses.field with the parsed default: the defaults are immutable values.

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlparse

from jwks_rotator.core.callers.principals import compile_caller_pattern
from jwks_rotator.core.durations import format_duration, parse_duration
from jwks_rotator.core.errors import ConfigurationError, quoted
from jwks_rotator.core.keys.algorithms import RSA_KEY_SIZES, algorithm_names

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}

T = TypeVar("T")
Parser = Callable[[Any, str], T]
"""``(raw value, kebab name) -> value``; raises :class:`ConfigurationError` naming the setting."""


def _text(raw: Any, name: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ConfigurationError(f"{name}: expected text, got {type(raw).__name__}")
    return str(raw).strip()


def _duration(raw: Any, name: str) -> timedelta:
    return parse_duration(raw, name=name)


def _optional_duration(raw: Any, name: str) -> timedelta | None:
    if isinstance(raw, str) and not raw.strip():
        return None
    return parse_duration(raw, name=name)


def _int(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ConfigurationError(f"{name}: expected a whole number, got {type(raw).__name__}")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigurationError(f"{name}: {quoted(raw)} is not a whole number") from None


def _audiences(raw: Any, name: str) -> tuple[str, ...]:
    items = [_text(item, name) for item in raw] if isinstance(raw, (list, tuple)) else _text(raw, name).split(",")
    return tuple(item.strip() for item in items if item.strip())


def _role_patterns(raw: Any, name: str) -> tuple[str, ...]:
    """Comma-separated IAM role ARNs (``*`` in the role name only), each checked as the issuance policy checks ``callers``."""
    patterns = _audiences(raw, name)
    if not patterns:
        return patterns
    for index, pattern in enumerate(patterns):
        compile_caller_pattern(pattern, f"{name}[{index}]")
    return patterns


_PARAMETER_NAME = re.compile(r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def _parameter_name(raw: Any, name: str) -> str:
    """An SSM parameter name: letters, digits, ``_.-`` and ``/`` between path parts; not ``aws``/``ssm``-prefixed."""
    text = _text(raw, name)
    reserved = text.lstrip("/").lower().startswith(("aws", "ssm"))
    if not text or len(text) > 1011 or not _PARAMETER_NAME.fullmatch(text) or reserved:
        raise ConfigurationError(f"{name}: {quoted(text)} is not an SSM parameter name this stack may own")
    return text


KEY_CUSTODIES = ("secrets-manager", "kms")
"""Where private keys live: as JWKs inside the keyring secret, or as non-exportable asymmetric KMS keys."""


def _custody(raw: Any, name: str) -> str:
    text = _text(raw, name).lower()
    if text not in KEY_CUSTODIES:
        raise ConfigurationError(f"{name}: {quoted(text)} is not one of {', '.join(KEY_CUSTODIES)}")
    return text


def _deletion_window(raw: Any, name: str) -> timedelta:
    """A KMS ScheduleKeyDeletion window: whole days from 7 to 30 (what KMS accepts)."""
    value = parse_duration(raw, name=name)
    seconds = int(value.total_seconds())
    if seconds % 86400 or not 7 <= seconds // 86400 <= 30:
        raise ConfigurationError(f"{name}: must be whole days from 7d to 30d (KMS's PendingWindowInDays)")
    return value


def _role_arn(raw: Any, name: str) -> str:
    """Empty, or one IAM role ARN (no wildcard): a principal a KMS key policy can name."""
    text = _text(raw, name)
    if text and not re.fullmatch(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}", text):
        raise ConfigurationError(f"{name}: {quoted(text)} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return text


def _role_account(arn: str) -> tuple[str, str]:
    """A role ARN's partition and account (the ARN is already checked to be one)."""
    parts = arn.split(":")
    return parts[1], parts[4]


def _role_arns(raw: Any, name: str) -> tuple[str, ...]:
    """Comma-separated IAM role ARNs (no wildcard), each once."""
    arns = tuple(_role_arn(item, name) for item in _audiences(raw, name))
    if len(set(arns)) != len(arns):
        raise ConfigurationError(f"{name}: a role is listed twice")
    return arns


_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")


def _region(raw: Any, name: str) -> str:
    """Empty, or one AWS region name (us-east-1, eu-west-1, us-gov-west-1)."""
    text = _text(raw, name).lower()
    if text and not _REGION.fullmatch(text):
        raise ConfigurationError(f"{name}: {quoted(text)} is not an AWS region name such as us-east-1")
    return text


def _regions(raw: Any, name: str) -> tuple[str, ...]:
    """Comma-separated AWS region names, each once."""
    regions = tuple(_region(item, name) for item in _audiences(raw, name))
    if len(set(regions)) != len(regions):
        raise ConfigurationError(f"{name}: a region is listed twice")
    return regions


FUNCTIONS = ("RotateFunction", "SignFunction")
"""The stack's functions (template logical ids). Each builds :class:`Settings` from its environment at cold start."""


class Parameter:
    """A setting the stack takes as a template parameter (its PascalCase name, the setting's default).

    ``group`` is the console's parameter group; ``allowed_values``, ``pattern`` (AllowedPattern) and ``constraint``
    (ConstraintDescription) are what CloudFormation checks before the functions do; ``note`` adds what the template
    does with the value; ``value`` is the environment entry when it is not the parameter itself (CloudFormation YAML).
    A plain class, not a dataclass: two more dataclasses cost this module ~0.8 ms at import, on the sign path's cold start.
    """

    __slots__ = ("allowed_values", "constraint", "group", "note", "pattern", "type", "value")

    def __init__(
        self, group: str, *, allowed_values: tuple[str, ...] = (), pattern: str = "", constraint: str = "", note: str = "",
        value: str = "", type: str = "String",
    ) -> None:
        self.group = group
        self.allowed_values = allowed_values
        self.pattern = pattern
        self.constraint = constraint
        self.note = note
        self.value = value
        self.type = type


class StackValue:
    """A setting the stack fills in itself (a resource it creates, its name or roles): no parameter.

    ``value`` is the environment entry (CloudFormation YAML, e.g. ``!Ref KeyringSecret``); ``why`` says why it is
    not a parameter when that is not plain. A plain class for the reason :class:`Parameter` gives.
    """

    __slots__ = ("value", "why")

    def __init__(self, value: str, why: str = "") -> None:
        self.value = value
        self.why = why


def _duration_parameter(group: str, note: str = "") -> Parameter:
    return Parameter(group, pattern=r"^[0-9]+(\.[0-9]+)?[smhdw]?$", constraint="a duration such as 30s, 15m, 12h, 7d or 2w", note=note)


def setting(
    default: str,
    doc: str,
    parse: Parser[T],
    *,
    stack: Parameter | StackValue,
    details: str = "",
    readers: tuple[str, ...] = FUNCTIONS,
) -> T:
    """Declare a :class:`Settings` field: default as written (parsed for the field), parser, meaning, how the stack sets it.

    ``doc`` is one line (the CLI's help); ``details`` is more for the settings reference; ``readers`` are the
    functions whose environment carries it (by default every function: each validates the whole combination).
    """
    metadata = {"default": default, "doc": doc, "parse": parse, "stack": stack, "details": details, "readers": readers}
    # dataclasses.field is typed as returning the default's type: what the annotation of the field declares.
    return dataclasses.field(default=parse(default, "default"), metadata=metadata)


@dataclass(frozen=True)
class SettingSpec:
    """One setting as the CLI, the template and the environment see it: attribute, default (as written), meaning."""

    attribute: str
    default: str
    doc: str
    parser: Parser[Any] = dataclasses.field(default=_text, repr=False, compare=False)
    stack: Parameter | StackValue | None = None
    details: str = ""
    readers: tuple[str, ...] = FUNCTIONS

    @property
    def kebab(self) -> str:
        return self.attribute.replace("_", "-")

    @property
    def env(self) -> str:
        return self.attribute.upper()

    @property
    def pascal(self) -> str:
        return "".join(part.capitalize() for part in self.attribute.split("_"))

    def parse(self, raw: Any) -> Any:
        """The typed value of ``raw``; :class:`ConfigurationError` naming the setting when it is malformed."""
        return self.parser(raw, self.kebab)


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with :meth:`from_mapping` or :meth:`from_env`."""

    algorithm: str = setting(
        "RS256", "JWS algorithm of new keys: RS256, PS256, ES256, ES384, ES512 or EdDSA (Ed25519). RS256 has the widest verifier support.", _text,
        stack=Parameter("Keys", allowed_values=algorithm_names()),
    )
    rsa_key_size: int = setting(
        "2048", "Modulus size in bits for RS256/PS256 keys: 2048, 3072 or 4096.", _int,
        stack=Parameter("Keys", allowed_values=tuple(map(str, RSA_KEY_SIZES))),
    )
    rotation_period: timedelta = setting(
        "7d", "How long a key signs before the next one takes over.", _duration,
        stack=_duration_parameter("Keys"),
    )
    publish_lead: timedelta = setting(
        "2d", "How long a key is in the published JWKS before it may sign; must exceed every verifier's JWKS cache (some hold a set 12-24 h).", _duration,
        stack=_duration_parameter("Keys", "At most rotation-period."),
    )
    max_token_ttl: timedelta = setting(
        "1h", "Longest lifetime the signer grants a token.", _duration,
        stack=_duration_parameter("Tokens"),
    )
    default_token_ttl: timedelta = setting(
        "15m", "Token lifetime when a request names none.", _duration,
        stack=_duration_parameter("Tokens", "At most max-token-ttl."),
    )
    jwks_max_age: timedelta = setting(
        "1h", "Cache-Control max-age of the published documents; at most half of publish-lead.", _duration,
        stack=_duration_parameter("Publishing"),
    )
    schedule: timedelta = setting(
        "15m", "How often the rotate function ticks; at most half of publish-lead.", _duration,
        stack=Parameter(
            "Keys", pattern="^[1-9][0-9]*m$",
            constraint="whole minutes, such as 5m, 15m or 60m (CloudFormation turns it into rate(N minutes))",
            note="The template takes whole minutes only (e.g. 15m, 60m): it makes the number the schedule expression rate(N minutes).",
        ),
    )
    issuer: str = setting(
        "", "The iss of every token and the base URL of the discovery document (https, or http on loopback).", _text,
        stack=Parameter(
            "Tokens", pattern=r"^(https://[^/?#\s]+(/[^?#\s]*[^/?#\s])?)?$",
            constraint="empty, or an https URL without query, fragment or trailing slash",
            note="Empty: the template derives https://<DomainName>, else https://<the distribution's domain>.",
            value='!If [HasIssuer, !Ref Issuer, !If [HasCustomDomain, !Sub "https://${DomainName}", !If [IsPrimary, !Sub "https://${Distribution.DomainName}", ""]]]',
        ),
    )
    allowed_audiences: tuple[str, ...] = setting(
        "", "Comma-separated audiences the signer accepts; empty accepts any.", _audiences,
        stack=Parameter("Tokens"),
    )
    default_audience: str = setting(
        "", "Audience used when a request names none; empty makes aud required.", _text,
        stack=Parameter("Tokens", note="Must be one of allowed-audiences when both are set."),
    )
    signer_cache_ttl: timedelta = setting(
        "60s", "How long a signer may use its cached keyring before reading it again.", _duration,
        stack=_duration_parameter("Tokens"),
    )
    clock_skew_leeway: timedelta = setting(
        "60s", "Clock difference tolerated between signers, rotators and verifiers.", _duration,
        stack=_duration_parameter("Tokens"),
    )
    retention: timedelta | None = setting(
        "", "How long a retired key stays published; empty derives max-token-ttl + signer-cache-ttl + clock-skew-leeway, and a set value may not be lower.", _optional_duration,
        stack=Parameter("Keys", pattern=r"^([0-9]+(\.[0-9]+)?[smhdw]?)?$", constraint="empty, or a duration such as 2h or 1d"),
    )
    keyring_secret_id: str = setting(
        "", "Name or ARN of the Secrets Manager secret that holds the keyring.", _text,
        stack=StackValue(
            '!If [IsPrimary, !Ref KeyringSecret, !Sub ["arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Name}", '
            '{Name: !Select [6, !Split [":", !Sub "${PrimaryKeyringSecretArn}::::::"]]}]]',
            why="A secondary region's stack reads the primary's keyring through its replica in this region: the same name and "
            "suffix (PrimaryKeyringSecretArn), this region (padded so that Select never runs past an empty value's end).",
        ),
    )
    signing_secret_id: str = setting(
        "", "Name or ARN of the Secrets Manager secret holding the signing view of the keyring (the active key, the restore hold and the revoked kids; nothing the signer must not use). The rotator writes it beside the keyring, the signer reads only it. Empty: the rotator writes none and the signer reads the keyring secret itself (deployments made before the signing view existed).", _text,
        stack=StackValue(
            '!If [IsPrimary, !Ref SigningKeySecret, !Sub "${AWS::StackName}-signing-key"]',
            why="A secondary region's stack reads the signing view's replica in this region, by its fixed name.",
        ),
    )
    jwks_bucket: str = setting(
        "", "S3 bucket the JWKS and discovery documents are written to.", _text,
        stack=StackValue("!Ref JwksBucket"),
    )
    distribution_id: str = setting(
        "", "CloudFront distribution to invalidate when the documents change; empty skips invalidation.", _text,
        stack=StackValue(
            "!If [IsPrimary, !Ref Distribution, !Ref PrimaryDistributionId]",
            why="Only the primary's stack has a distribution; a secondary's names it (PrimaryDistributionId), which it invalidates once promoted.",
        ),
    )
    revocation_parameter: str = setting(
        "/jwks-rotator/revoked-kids", "SSM parameter (String, a JSON list of kids) holding every revoked kid, kept apart from the keyring secret so that restoring the secret cannot undo a revocation; the rotator creates it, the signer refuses to sign while it cannot read it.", _parameter_name,
        stack=StackValue(
            '!Sub "/jwks-rotator/${AWS::StackName}/revoked-kids"',
            why="Not a resource of this stack: a CloudFormation update of an SSM parameter rewrites its value, which would wipe the revoked kids. "
            'The rotator creates it ("[]") before first use; the signer fails closed (signing_unavailable) while it does not exist.',
        ),
        details="The rotator only ever adds to it, at most 89 kids: a full list refuses the next revoke.",
    )
    issuance_policy_file: str = setting(
        "issuance-policy.yaml", "The sign function's issuance policy (who may obtain which tokens): a YAML file deployed with it, relative to its code directory.", _text,
        stack=Parameter(
            "Callers", pattern="^[A-Za-z0-9_./-]{1,255}$",
            constraint="a file path of letters, digits, _ . / - (relative to functions/sign/, or absolute)",
            note="Its code directory is functions/sign/. The shipped issuance-policy.yaml is `disabled: true`: the stack issues nothing until you write its profiles.",
        ),
        details="Read once per container, at cold start; absolute paths are taken as they are.",
    )
    key_custody: str = setting(
        "secrets-manager", "Where new private keys live: secrets-manager (JWKs inside the keyring secret) or kms (one non-exportable asymmetric KMS key per lifecycle key; the keyring then holds public keys and key ARNs only). Switching on a running stack affects new keys only.", _custody,
        stack=Parameter("Keys", allowed_values=KEY_CUSTODIES, note='kms costs $1 per key-month and a Sign call per token (docs/deploying.md, "Choosing key custody").'),
    )
    key_deletion_window: timedelta = setting(
        "30d", "With kms custody: the ScheduleKeyDeletion waiting period of a KMS key whose retention ended (whole days, 7d to 30d).", _deletion_window,
        stack=Parameter("Keys", pattern="^([7-9]|[12][0-9]|30)d$", constraint="whole days from 7d to 30d (KMS's PendingWindowInDays)"),
    )
    kms_handover_wait: timedelta = setting(
        "5s", "With kms custody: how long the rotator waits, after disabling the KMS keys that may no longer sign, before it enables the new active key (KMS applies EnableKey/DisableKey eventually, typically within seconds): never two keys signable at once. At most 30s.", _duration,
        stack=Parameter("Keys", pattern="^([0-9]|[12][0-9]|30)s$", constraint="whole seconds from 0s to 30s"),
    )
    kms_stack_tag: str = setting(
        "", "With kms custody: the value of the jwks-rotator:stack tag on every KMS key this stack makes; the roles' IAM policies allow only keys carrying it, and the orphan sweep looks for it.", _text,
        stack=StackValue("!Ref AWS::StackName", why="Both roles' KMS statements require the tag, and each key's own policy names the two roles."),
    )
    kms_sign_role_arn: str = setting(
        "", "With kms custody: the sign function's role, named in each new KMS key's policy as the one principal allowed kms:Sign (of kms-rotate-role-arn's account).", _role_arn,
        stack=StackValue("!GetAtt SignFunctionRole.Arn"),
    )
    kms_rotate_role_arn: str = setting(
        "", "With kms custody: the rotate function's role, named in each new KMS key's policy as the principal that manages it.", _role_arn,
        stack=StackValue("!GetAtt RotateFunctionRole.Arn"),
    )
    kms_replica_sign_role_arns: tuple[str, ...] = setting(
        "", "With kms custody and other regions: every other region's sign role, named in each replica key's policy as the principals allowed kms:Sign there (each of kms-rotate-role-arn's account; empty: the replicas name no signer, so those regions cannot sign under kms custody until it is set).", _role_arns,
        stack=StackValue(
            "!Ref SecondarySignRoleArns",
            why="The primary's stack names every secondary stack's sign role (their SignFunctionRoleArn outputs); a secondary's stack leaves it empty.",
        ),
        readers=("RotateFunction",),
    )
    primary_region: str = setting(
        "", "The one region whose rotate function writes the keyring, the documents and the revocation lists (empty: this stack's region, one region only). A rotate function in another region refuses to write.", _region,
        stack=Parameter("Regions", pattern=r"^([a-z]{2}(-[a-z]+)+-[0-9]{1,2})?$", constraint="empty, or an AWS region name such as us-east-1"),
        readers=("RotateFunction",),
        details="Changed only by promote (docs/regions.md): every region's stack names the same primary.",
    )
    regions: tuple[str, ...] = setting(
        "", "Comma-separated regions that run a signer, the primary included (empty: this stack's region only). Activation waits for every region's replica, deletion for every region's signing view; a revocation is written to every region's list.", _regions,
        stack=Parameter(
            "Regions", pattern=r"^([a-z]{2}(-[a-z]+)+-[0-9]{1,2}(,[a-z]{2}(-[a-z]+)+-[0-9]{1,2}){0,4})?$",
            constraint="empty, or up to 5 comma-separated AWS region names without spaces",
            note="At most 5: the template replicates the secrets to each of them but the primary by position.",
        ),
        readers=("RotateFunction",),
    )
    second_origin_bucket: str = setting(
        "", "The other origin bucket of the documents behind the distribution's origin group, in another region than this stack's: in the primary's stack the origin group's second bucket, in a secondary's the primary's bucket (so a promoted writer writes both). The writer writes both and a publication counts only when both hold the documents (empty: one origin).", _text,
        stack=Parameter("Regions", pattern=r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$", constraint="empty, or an S3 bucket name"),
        readers=("RotateFunction",),
    )
    second_origin_region: str = setting(
        "", "The region of second-origin-bucket (one of regions, never the stack's own: the rotate function refuses that).", _region,
        stack=Parameter("Regions", pattern=r"^([a-z]{2}(-[a-z]+)+-[0-9]{1,2})?$", constraint="empty, or an AWS region name such as eu-west-1"),
        readers=("RotateFunction",),
    )
    operator_roles: tuple[str, ...] = setting(
        "", "Comma-separated IAM role ARNs (arn:aws:iam::ACCOUNT:role/NAME, * allowed in NAME) whose sessions may invoke the rotate function's operations rotate-now, revoke and publish with a proof of identity; empty allows no operator (scheduled ticks need none).", _role_patterns,
        stack=Parameter(
            "Callers",
            pattern=r"^(arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=.@*-]{1,64}(, ?arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=.@*-]{1,64})*)?$",
            constraint="empty, or comma-separated IAM role ARNs without a path (* allowed in the role name)",
            note="publish includes publish with accept_restore. The roles also need lambda:InvokeFunction on the rotate function in their own IAM policies.",
        ),
    )

    def __post_init__(self) -> None:
        self.validate()

    # --- derived values -------------------------------------------------
    @property
    def minimum_retention(self) -> timedelta:
        """max-token-ttl + signer-cache-ttl + clock-skew-leeway."""
        return self.max_token_ttl + self.signer_cache_ttl + self.clock_skew_leeway

    @property
    def effective_retention(self) -> timedelta:
        """How long a retired key stays published after it stops signing."""
        return self.retention if self.retention is not None else self.minimum_retention

    @property
    def jwks_uri(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/jwks.json"

    @property
    def discovery_uri(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    # --- validation -----------------------------------------------------
    def validate(self) -> None:
        """Refuse unsafe or malformed combinations, naming the rule broken."""
        if self.algorithm not in algorithm_names():
            raise ConfigurationError(
                f"algorithm: {quoted(self.algorithm)} is not supported; choose one of {', '.join(algorithm_names())}"
            )
        if self.rsa_key_size not in RSA_KEY_SIZES:
            raise ConfigurationError(
                f"rsa-key-size: {self.rsa_key_size} is not supported; choose one of {', '.join(map(str, RSA_KEY_SIZES))}"
            )
        for name in ("rotation_period", "publish_lead", "max_token_ttl", "default_token_ttl", "jwks_max_age", "schedule", "signer_cache_ttl"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigurationError(f"{name.replace('_', '-')}: must be greater than zero")
        if not timedelta(0) <= self.kms_handover_wait <= timedelta(seconds=30):
            raise ConfigurationError("kms-handover-wait: must be from 0s to 30s (the rotate function times out after 60 s)")
        if self.clock_skew_leeway < timedelta(0):
            raise ConfigurationError("clock-skew-leeway: must not be negative")
        if self.publish_lead > self.rotation_period:
            raise ConfigurationError(
                f"rule publish-lead <= rotation-period: a key must be published for {format_duration(self.publish_lead)} "
                f"but would be due after {format_duration(self.rotation_period)}"
            )
        if self.jwks_max_age * 2 > self.publish_lead:
            raise ConfigurationError(
                f"rule jwks-max-age <= publish-lead / 2: verifiers may cache the JWKS for {format_duration(self.jwks_max_age)}, "
                f"which leaves too little of the {format_duration(self.publish_lead)} a new key is published before it signs "
                "(a cache filled just before the publication must expire with margin before the key signs)"
            )
        if self.schedule * 2 > self.publish_lead:
            raise ConfigurationError(
                f"rule schedule <= publish-lead / 2: ticking every {format_duration(self.schedule)} is too coarse "
                f"for a publish lead of {format_duration(self.publish_lead)}"
            )
        if self.default_token_ttl > self.max_token_ttl:
            raise ConfigurationError(
                f"rule default-token-ttl <= max-token-ttl: {format_duration(self.default_token_ttl)} exceeds "
                f"{format_duration(self.max_token_ttl)}"
            )
        if self.retention is not None and self.retention < self.minimum_retention:
            raise ConfigurationError(
                f"rule retention >= max-token-ttl + signer-cache-ttl + clock-skew-leeway: {format_duration(self.retention)} "
                f"is below the derived minimum {format_duration(self.minimum_retention)}"
            )
        if self.default_audience and self.allowed_audiences and self.default_audience not in self.allowed_audiences:
            raise ConfigurationError(
                f"rule default-audience in allowed-audiences: {quoted(self.default_audience)} is not allowed"
            )
        if self.regions and self.primary_region not in self.regions:
            raise ConfigurationError(
                f"rule primary-region in regions: {quoted(self.primary_region or '(empty)')} is not one of {', '.join(self.regions)}"
            )
        if bool(self.second_origin_bucket) != bool(self.second_origin_region):
            raise ConfigurationError("rule second-origin-bucket with second-origin-region: set both or neither")
        if self.second_origin_region and self.second_origin_region not in self.regions:
            raise ConfigurationError(
                f"rule second-origin-region in regions: {quoted(self.second_origin_region)} is not one of the regions"
            )
        self._validate_role_accounts()
        if self.issuer:
            parsed = urlparse(self.issuer)
            if parsed.username is not None or parsed.password is not None:
                raise ConfigurationError("issuer: must not carry credentials (user:password@); the value is not shown")
            loopback = parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS
            if not (parsed.scheme == "https" or loopback) or not parsed.hostname or parsed.query or parsed.fragment:
                raise ConfigurationError(
                    f"issuer: {quoted(self.issuer)} must be an https URL without query or fragment (http only on loopback)"
                )

    def _validate_role_accounts(self) -> None:
        """Every role a key policy names is of the rotate role's account and partition: a key policy naming a role of
        another account lets whoever controls that account sign (each region's stack is in the same account)."""
        if not self.kms_rotate_role_arn:
            return
        own = _role_account(self.kms_rotate_role_arn)
        named = {"kms_sign_role_arn": (self.kms_sign_role_arn,) if self.kms_sign_role_arn else (),
                 "kms_replica_sign_role_arns": self.kms_replica_sign_role_arns}
        for attribute, arns in named.items():
            foreign = sorted({":".join(_role_account(arn)) for arn in arns if _role_account(arn) != own})
            if foreign:
                raise ConfigurationError(
                    f"rule {attribute.replace('_', '-')} in the rotate role's account: {', '.join(foreign)} is not "
                    f"{':'.join(own)} (partition:account)"
                )

    def require(self, *attributes: str) -> None:
        """Refuse to go on when a setting a component needs is empty."""
        missing = [SETTINGS_BY_ATTRIBUTE[a].kebab for a in attributes if not getattr(self, a)]
        if missing:
            raise ConfigurationError(f"missing required setting(s): {', '.join(missing)}")

    # --- construction ---------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build from a mapping keyed by attribute, kebab-case or env name; strings are parsed."""
        lookup = {}
        for spec in SETTINGS:
            for key in (spec.attribute, spec.kebab, spec.env, spec.pascal):
                lookup[key] = spec
        unknown = [key for key in values if key not in lookup]
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            spec = lookup[key]
            if raw is None:
                continue
            kwargs[spec.attribute] = spec.parse(raw)
        return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build from environment variables named in upper snake case (``ROTATION_PERIOD``)."""
        return cls.from_mapping({spec.attribute: environ[spec.env] for spec in SETTINGS if spec.env in environ})

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (strings are parsed as on the command line), validated again."""
        parsed = {
            name: SETTINGS_BY_ATTRIBUTE[name].parse(value) if isinstance(value, str) else value
            for name, value in changes.items()
        }
        return dataclasses.replace(self, **parsed)

    def describe(self) -> dict[str, str]:
        """Every setting as written on a command line, for logs and the CLI."""
        out: dict[str, str] = {}
        for spec in SETTINGS:
            value = getattr(self, spec.attribute)
            if isinstance(value, timedelta):
                out[spec.kebab] = format_duration(value)
            elif isinstance(value, tuple):
                out[spec.kebab] = ",".join(value)
            elif value is None:
                out[spec.kebab] = f"(derived: {format_duration(self.effective_retention)})"
            else:
                out[spec.kebab] = str(value)
        return out


SETTINGS: tuple[SettingSpec, ...] = tuple(
    SettingSpec(
        f.name, f.metadata["default"], f.metadata["doc"], f.metadata["parse"], f.metadata["stack"], f.metadata["details"], f.metadata["readers"]
    )
    for f in dataclasses.fields(Settings)
)
"""Every setting, in declaration order."""

SETTINGS_BY_ATTRIBUTE: dict[str, SettingSpec] = {spec.attribute: spec for spec in SETTINGS}
