"""The key policy the rotator gives each KMS key it creates (KMS custody): named roles, no use by the account.

A custody key holds a signing key's private half inside KMS. Its policy names the principals by ARN,
from the settings the template fills (``sign-role-arn``, ``rotate-role-arn``):

* the sign role may ``kms:Sign`` with it, and nothing else;
* the rotate role may read its public half (the JWKS), describe it, tag it and retire it
  (``DisableKey``, ``ScheduleKeyDeletion``), and ``PutKeyPolicy``: KMS refuses ``CreateKey`` with a policy
  that would not let the creating principal change it later (the lockout safety check);
* the account root administers it through IAM (describe, disable, schedule deletion, change the policy)
  with no cryptographic use: without that statement a key whose named roles were deleted could never be
  managed again.

Pure data: the KMS adapter passes the document to ``CreateKey``; ``tests/privilege`` evaluates it.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigurationError

ADMINISTRATION = (
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
    "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
)
"""What the account root may do: administration only (``kms:Get*`` reads the policy and the public key)."""


def custody_key_policy(*, partition: str, account: str, sign_role_arn: str, rotate_role_arn: str) -> dict[str, Any]:
    """The policy document of a custody key for this stack's two roles."""
    if not sign_role_arn or not rotate_role_arn:
        raise ConfigurationError("sign-role-arn and rotate-role-arn: a custody key's policy names both roles; set them")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministersTheKey", "Effect": "Allow",
             "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"}, "Action": list(ADMINISTRATION), "Resource": "*"},
            {"Sid": "SignRoleSigns", "Effect": "Allow", "Principal": {"AWS": sign_role_arn},
             "Action": "kms:Sign", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": account}}},
            {"Sid": "RotateRoleKeepsTheKey", "Effect": "Allow", "Principal": {"AWS": rotate_role_arn},
             "Action": ["kms:GetPublicKey", "kms:DescribeKey", "kms:TagResource", "kms:DisableKey",
                        "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"],
             "Resource": "*"},
        ],
    }
