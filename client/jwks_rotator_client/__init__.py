"""Client for jwks-rotator functions: invoke them with a proof of the caller's AWS identity.

:class:`SignClient` asks the sign function for tokens; :class:`RegionalSignClient` asks the
sign functions of several regions, failing over in order of preference; :class:`OperatorClient`
runs the rotate function's operations (rotate-now, revoke, publish) as an
operator. Depends on boto3/botocore only and imports nothing else from
jwks-rotator, so a service may vendor this package as it is.
"""

from .operator_client import OperationFailedError, OperatorClient
from .regional import RegionalAnswer, RegionalSignClient, RegionalSigner, RegionFailure, RegionsUnavailableError
from .sign_client import (
    GET_CALLER_IDENTITY_BODY,
    PROOF_REUSE_SECONDS,
    SIGNER_HEADER,
    InvokeError,
    ProofInvoker,
    SignClient,
    SignInvokeError,
    build_caller_proof,
)

__all__ = [
    "GET_CALLER_IDENTITY_BODY",
    "PROOF_REUSE_SECONDS",
    "SIGNER_HEADER",
    "InvokeError",
    "OperationFailedError",
    "OperatorClient",
    "ProofInvoker",
    "RegionFailure",
    "RegionalAnswer",
    "RegionalSignClient",
    "RegionalSigner",
    "RegionsUnavailableError",
    "SignClient",
    "SignInvokeError",
    "build_caller_proof",
]
