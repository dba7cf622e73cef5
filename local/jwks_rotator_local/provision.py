"""A hand-made subset of the template's resources under names a test chooses.

The local stack and the testing kit deploy template.yaml itself (:mod:`.template_stack`); this stays for tests
that need a secret or bucket of a given name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jwks_rotator.core.keys.keyring import EMPTY_KEYRING_JSON
from jwks_rotator.core.settings import Settings

ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class CreatedResources:
    secret_id: str
    bucket: str
    distribution_id: str
    distribution_domain: str
    revocation_parameter: str = Settings().revocation_parameter
    signing_secret_id: str = ""


def create_revocation_parameter(client: ClientFactory, name: str) -> None:
    """The revocation list, empty; one that exists already (another stack in this moto process) is kept as it is."""
    ssm = client("ssm")
    with contextlib.suppress(ssm.exceptions.ParameterAlreadyExists):
        ssm.put_parameter(Name=name, Value="[]", Type="String", Overwrite=False,
                          Description="jwks-rotator: revoked kids (JSON list); only ever added to")


def create_resources(
    client: ClientFactory, *, secret_name: str, bucket: str, revocation_parameter: str = Settings().revocation_parameter
) -> CreatedResources:
    """A KMS key, the keyring secret (empty keyring), the revocation parameter, a private bucket and a distribution."""
    kms = client("kms")
    key_id = kms.create_key(Description="jwks-rotator keyring", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    secret = client("secretsmanager").create_secret(Name=secret_name, KmsKeyId=key_id, SecretString=EMPTY_KEYRING_JSON)
    # The signing view (the active key only), as the template's SigningKeySecret: the signer reads nothing else.
    signing = client("secretsmanager").create_secret(Name=f"{secret_name}-signing-key", KmsKeyId=key_id, SecretString=EMPTY_KEYRING_JSON)
    create_revocation_parameter(client, revocation_parameter)
    s3 = client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    origin = f"{bucket}.s3.amazonaws.com"
    distribution = client("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": bucket,
            "Comment": "jwks-rotator public documents",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "jwks", "DomainName": origin, "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "jwks",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )["Distribution"]
    return CreatedResources(secret["ARN"], bucket, distribution["Id"], distribution["DomainName"], revocation_parameter,
                            signing["ARN"])
