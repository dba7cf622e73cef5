"""Create the AWS resources the SAM template creates, for the local stack and tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jwks_rotator.core.keyring import EMPTY_KEYRING_JSON

ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class CreatedResources:
    secret_id: str
    bucket: str
    distribution_id: str
    distribution_domain: str


def create_resources(client: ClientFactory, *, secret_name: str, bucket: str) -> CreatedResources:
    """A KMS key, the keyring secret (empty keyring), a private bucket and a distribution in front of it."""
    kms = client("kms")
    key_id = kms.create_key(Description="jwks-rotator keyring", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    secret = client("secretsmanager").create_secret(Name=secret_name, KmsKeyId=key_id, SecretString=EMPTY_KEYRING_JSON)
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
    return CreatedResources(secret["ARN"], bucket, distribution["Id"], distribution["DomainName"])
