"""The local stack in KMS custody: every algorithm moto's KMS signs correctly works end to end; the others are refused."""

from __future__ import annotations

import json

import jwt
import pytest

from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator_local.local_stack import LocalStack
from jwks_rotator_testkit.fast import fast_settings

pytestmark = pytest.mark.integration

FAST = fast_settings(key_custody="kms")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "ES384", "ES512"])
def test_kms_custody_signs_tokens_that_verify_against_the_served_jwks(alg: str) -> None:
    with LocalStack({**FAST, "algorithm": alg}) as stack:
        body = stack.sign_client().sign({"sub": "alice", "aud": "orders"})
        assert set(body) >= {"token", "kid", "alg"}, body.get("error")
        key = jwt.PyJWKClient(stack.jwks_url, cache_jwk_set=False).get_signing_key_from_jwt(body["token"])
        claims = jwt.decode(body["token"], key, algorithms=[alg], audience="orders", issuer=stack.issuer)
        assert claims["sub"] == "alice"
        secret = stack.client("secretsmanager").get_secret_value(
            SecretId=stack.function_env["KEYRING_SECRET_ID"], VersionStage="AWSCURRENT")["SecretString"]
        keyring = Keyring.from_json(secret)
        assert keyring.active is not None and keyring.active.kms_key_arn is not None
        assert '"d":' not in secret and "private_jwk" not in json.loads(secret)["keys"][0]
        # The key policy and tag come from the deployed template (its roles, its stack name), not local guesses.
        kms = stack.client("kms")
        policy = json.loads(kms.get_key_policy(KeyId=keyring.active.kms_key_arn, PolicyName="default")["Policy"])
        assert stack.function_env["KMS_SIGN_ROLE_ARN"] in json.dumps(policy)
        assert stack.function_env["KMS_SIGN_ROLE_ARN"] == stack.deployed_template().functions["SignFunction"].role_arn
        tags = kms.list_resource_tags(KeyId=keyring.active.kms_key_arn)["Tags"]
        assert stack.function_env["KMS_STACK_TAG"] in {tag["TagValue"] for tag in tags}


@pytest.mark.parametrize(("alg", "gap"), [("PS256", "maximum salt length"), ("EdDSA", "ECC_NIST_EDWARDS25519")])
def test_algorithms_moto_cannot_sign_honestly_are_refused_naming_the_gap(alg: str, gap: str) -> None:
    with pytest.raises(ConfigurationError, match=gap):
        LocalStack({**FAST, "algorithm": alg})
