"""jwks-rotator: signing-key lifecycle, JWKS publishing and JWT signing on AWS.

Shared by every Lambda function (through the layer), the CLI and the tests,
in three layers; each depends only on the ones below it (pyproject
``[tool.importlinter]`` holds the contracts, ``make lint`` checks them):

* :mod:`.wiring` - the composition root: ``build_rotation_service`` and
  ``build_token_signer`` join the core's services to their adapters. The
  handlers in ``functions/`` call it and stay thin.
* :mod:`.adapters` - the outside world behind the core's ports:
  Secrets Manager (``secrets_store``, and ``secret_reader`` for the signer),
  S3/CloudFront (``s3_publisher``), powertools logs and metrics
  (``observability``), every boto3 client and AWS error code
  (``aws_clients``) and a small HTTP transport (``http``).
* :mod:`.core` - the domain, with no AWS SDK, powertools or adapter in it:
  settings, algorithms, keys and key generation, the keyring and its pure
  lifecycle, the rotation service, the public documents, the token policy
  and signer, and the ports (``core.ports``) the adapters implement.

The sign path (signer, token policy, settings, secret reader) never loads
the rotation service, key generation or jwcrypto.
"""

__version__ = "0.1.0"
