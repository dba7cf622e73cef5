"""Client for a jwks-rotator sign function: invoke it with a proof of the caller's AWS identity.

Depends on boto3/botocore only and imports nothing else from jwks-rotator,
so a service may vendor this package as it is.
"""

from .sign_client import (
    GET_CALLER_IDENTITY_BODY,
    PROOF_REUSE_SECONDS,
    SIGNER_HEADER,
    SignClient,
    SignInvokeError,
    build_caller_proof,
)

__all__ = [
    "GET_CALLER_IDENTITY_BODY",
    "PROOF_REUSE_SECONDS",
    "SIGNER_HEADER",
    "SignClient",
    "SignInvokeError",
    "build_caller_proof",
]
