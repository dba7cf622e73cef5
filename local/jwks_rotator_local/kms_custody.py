"""``--key-custody kms`` on the local stack: what moto's KMS can honestly do, and the settings a template would pass.

moto 5.2.5 signs RSA PKCS#1 v1.5 and ECDSA P-256/384/521 for real, so RS256
and ES256/384/512 run in KMS custody locally. It cannot make the other two
honest, so the local stack refuses them in KMS custody, naming the gap:

* PS256: moto's RSASSA_PSS_SHA_256 uses the maximum salt length; AWS (and RFC
  7518 3.5) use the hash length, so strict verifiers reject moto's tokens.
* EdDSA: moto refuses CreateKey with KeySpec ECC_NIST_EDWARDS25519.

The stack tag and the two role ARNs, which the template derives from the
stack (its name, its functions' roles), get local values when not given,
and so does kms-handover-wait: 0s, because moto applies EnableKey and
DisableKey at once (the hand-over's wait covers AWS's eventual consistency,
which the unit tests show with a test double).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator_cli.local_state import LOCAL_ACCOUNT

MOTO_GAPS = {
    "PS256": "moto's KMS signs RSASSA_PSS_SHA_256 with the maximum salt length (AWS and RFC 7518 use the hash length), "
             "so its PS256 tokens fail strict verifiers",
    "EdDSA": "moto's KMS refuses CreateKey with KeySpec ECC_NIST_EDWARDS25519",
}
LOCAL_KMS_ENV = {
    "KMS_STACK_TAG": "jwks-rotator-local",
    "KMS_SIGN_ROLE_ARN": f"arn:aws:iam::{LOCAL_ACCOUNT}:role/jwks-rotator-local-SignFunctionRole",
    "KMS_ROTATE_ROLE_ARN": f"arn:aws:iam::{LOCAL_ACCOUNT}:role/jwks-rotator-local-RotateFunctionRole",
    "KMS_HANDOVER_WAIT": "0s",
}


def apply_local_kms_custody(env: MutableMapping[str, str]) -> None:
    """With KEY_CUSTODY=kms: refuse an algorithm moto cannot sign honestly, and fill in the template-derived settings."""
    if env.get("KEY_CUSTODY", "").strip().lower() != "kms":
        return
    algorithm = env.get("ALGORITHM", "RS256").strip()
    gap = MOTO_GAPS.get(algorithm)
    if gap is not None:
        raise ConfigurationError(
            f"key-custody kms with algorithm {algorithm} cannot run on the local stack: {gap}. "
            "Use RS256, ES256, ES384 or ES512 locally, or key-custody secrets-manager"
        )
    for name, value in LOCAL_KMS_ENV.items():
        env.setdefault(name, value)
