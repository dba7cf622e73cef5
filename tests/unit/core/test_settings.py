from datetime import timedelta

import pytest

from jwks_rotator.core.durations import format_duration, parse_duration
from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.settings import SETTINGS, Settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800), ("1w", 604800), ("1.5s", 1.5), (45, 45)],
)
def test_durations_accept_seconds_and_units(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "7x", "-1s", "1d2h", "soon", True, float("nan")])
def test_durations_refuse_anything_else(text):
    with pytest.raises(ConfigurationError):
        parse_duration(text, name="rotation-period")


def test_format_duration_round_trips():
    for text in ("7d", "2d", "15m", "90s", "1h"):
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_defaults_are_the_documented_ones():
    settings = Settings()
    described = settings.describe()
    for spec in SETTINGS:
        if spec.default:
            assert parse_or_text(described[spec.kebab]) == parse_or_text(spec.default), spec.kebab
    assert settings.effective_retention == timedelta(hours=1, minutes=2)


def parse_or_text(value):
    try:
        return parse_duration(value)
    except ConfigurationError:
        return value


def test_names_are_derived_three_ways():
    spec = next(s for s in SETTINGS if s.attribute == "rotation_period")
    assert (spec.kebab, spec.pascal, spec.env) == ("rotation-period", "RotationPeriod", "ROTATION_PERIOD")


def test_from_mapping_accepts_every_spelling():
    settings = Settings.from_mapping({"rotation-period": "20s", "PUBLISH_LEAD": "5s", "JwksMaxAge": "2s", "schedule": "1s"})
    assert settings.rotation_period == timedelta(seconds=20)
    assert settings.publish_lead == timedelta(seconds=5)


def test_from_env_reads_upper_snake_case():
    settings = Settings.from_env({"ALGORITHM": "ES256", "ALLOWED_AUDIENCES": "a, b,,c", "UNRELATED": "x"})
    assert settings.algorithm == "ES256"
    assert settings.allowed_audiences == ("a", "b", "c")


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"jwks_max_age": "3d"}, "jwks-max-age <= publish-lead / 2"),
        ({"jwks_max_age": "2d"}, "jwks-max-age <= publish-lead / 2"),  # equal to the lead: no margin left
        ({"jwks_max_age": "25h"}, "jwks-max-age <= publish-lead / 2"),
        ({"publish_lead": "8d", "jwks_max_age": "1h"}, "publish-lead <= rotation-period"),
        ({"schedule": "25h"}, "schedule <= publish-lead / 2"),
        ({"default_token_ttl": "2h"}, "default-token-ttl <= max-token-ttl"),
        ({"retention": "30m"}, "retention >= max-token-ttl + signer-cache-ttl + clock-skew-leeway"),
        ({"allowed_audiences": "a,b", "default_audience": "c"}, "default-audience in allowed-audiences"),
    ],
)
def test_unsafe_combinations_are_refused_naming_the_rule(changes, rule):
    with pytest.raises(ConfigurationError, match=rule.replace("+", r"\+")):
        Settings.from_mapping(changes)


@pytest.mark.parametrize(
    ("name", "value"),
    [("algorithm", "HS256"), ("algorithm", "none"), ("rsa_key_size", "1024"), ("issuer", "http://example.com"),
     ("issuer", "ftp://x"), ("issuer", "https://x.example/?q=1"), ("max_token_ttl", "0s"), ("bogus", "1")],
)
def test_bad_values_are_refused(name, value):
    with pytest.raises(ConfigurationError):
        Settings.from_mapping({name: value})


def test_http_issuer_is_allowed_on_loopback_only():
    assert Settings(issuer="http://127.0.0.1:8080").jwks_uri == "http://127.0.0.1:8080/.well-known/jwks.json"
    with pytest.raises(ConfigurationError):
        Settings(issuer="http://10.0.0.1")


def test_retention_may_be_raised_never_lowered():
    assert Settings.from_mapping({"retention": "1d"}).effective_retention == timedelta(days=1)


def test_require_names_missing_settings():
    with pytest.raises(ConfigurationError, match="keyring-secret-id"):
        Settings().require("keyring_secret_id")


def test_the_table_is_the_fields_declared_once():
    import dataclasses

    assert [spec.attribute for spec in SETTINGS] == [field.name for field in dataclasses.fields(Settings)]
    defaults = Settings()
    for spec in SETTINGS:
        assert spec.doc and getattr(defaults, spec.attribute) == spec.parse(spec.default), spec.attribute


@pytest.mark.parametrize(
    ("name", "value"),
    [("rsa_key_size", True), ("issuer", False), ("max_token_ttl", True), ("allowed_audiences", [True]), ("algorithm", 3.5),
     ("rsa_key_size", "2048.5"), ("default_audience", {"a": 1})],
)
def test_boolean_like_or_malformed_values_are_refused_naming_the_setting(name, value):
    with pytest.raises(ConfigurationError, match=name.replace("_", "-")):
        Settings.from_mapping({name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [("rsa_key_size", "secret-canary-" + "x" * 60), ("signer_cache_ttl", "secret-canary-" + "x" * 60),
     ("issuer", "https://user:secret-canary@issuer.example"), ("algorithm", "secret-canary-" + "x" * 60)],
)
def test_refusals_do_not_echo_long_values_or_credentials(name, value):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_mapping({name: value})
    assert "secret-canary" not in str(raised.value) and name.replace("_", "-") in str(raised.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"regions": "us-east-1,eu-west-1"}, "primary-region in regions"),
        ({"regions": "us-east-1,eu-west-1", "primary_region": "ap-south-1"}, "primary-region in regions"),
        ({"regions": "us-east-1,us-east-1", "primary_region": "us-east-1"}, "listed twice"),
        ({"regions": "us-east-1,Europe", "primary_region": "us-east-1"}, "not an AWS region name"),
        ({"primary_region": "us-east-1", "regions": "us-east-1,eu-west-1", "second_origin_bucket": "b"}, "set both or neither"),
        ({"primary_region": "us-east-1", "regions": "us-east-1,eu-west-1", "second_origin_bucket": "b", "second_origin_region": "ap-south-1"}, "second-origin-region in regions"),
    ],
)
def test_region_settings_refuse_what_no_deployment_could_mean(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_mapping(values)


def test_region_settings_accept_a_primary_with_a_second_origin() -> None:
    settings = Settings.from_mapping(
        {"primary_region": "us-east-1", "regions": "us-east-1, eu-west-1", "second_origin_bucket": "docs-eu", "second_origin_region": "eu-west-1"}
    )
    assert settings.regions == ("us-east-1", "eu-west-1")
    assert Settings().regions == () and Settings().primary_region == ""


ROTATE = "arn:aws:iam::111111111111:role/stack-RotateFunctionRole-A"


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"kms_sign_role_arn": "arn:aws:iam::222222222222:role/stack-SignFunctionRole-A"}, "kms-sign-role-arn"),
        ({"kms_replica_sign_role_arns": "arn:aws:iam::111111111111:role/stack-SignFunctionRole-B,arn:aws:iam::222222222222:role/x"},
         "kms-replica-sign-role-arns"),
        ({"kms_replica_sign_role_arns": "arn:aws-cn:iam::111111111111:role/stack-SignFunctionRole-B"}, "kms-replica-sign-role-arns"),
    ],
)
def test_role_settings_name_roles_of_the_rotate_roles_account_only(values: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=f"rule {setting} in the rotate role's account") as refused:
        Settings.from_mapping({"kms_rotate_role_arn": ROTATE, **values})
    assert "role/" not in str(refused.value)  # names accounts, never echoes the ARN


def test_role_settings_of_the_rotate_roles_account_are_accepted() -> None:
    settings = Settings.from_mapping({"kms_rotate_role_arn": ROTATE, "kms_sign_role_arn": "arn:aws:iam::111111111111:role/stack-Sign-A",
                                      "kms_replica_sign_role_arns": "arn:aws:iam::111111111111:role/stack-Sign-B"})
    assert settings.kms_replica_sign_role_arns == ("arn:aws:iam::111111111111:role/stack-Sign-B",)


def test_a_secondarys_second_origin_is_the_primarys_bucket_in_the_primary_region() -> None:
    """The other origin, in another region than the stack's: which region that is, only the function knows (bootstrap)."""
    settings = Settings.from_mapping(
        {"primary_region": "us-east-1", "regions": "us-east-1,eu-west-1", "second_origin_bucket": "docs-us", "second_origin_region": "us-east-1"}
    )
    assert settings.second_origin_region == settings.primary_region
