"""jwks-rotator: signing-key lifecycle, JWKS publishing and JWT signing on AWS.

Shared by both Lambda functions (through the layer), the CLI and the tests, in three layers; each imports only the
ones below it (pyproject ``[tool.importlinter]`` holds the contracts, ``make lint`` checks them):

* :mod:`.bootstrap` - composition roots, one per function (``rotate``, ``sign``): which adapter stands behind each
  port. The handlers in ``functions/`` and the CLI call them.
* :mod:`.adapters` - the outside world behind the core's ports: ``sdk`` (boto3: Secrets Manager, S3/CloudFront,
  SSM, KMS, powertools) and ``lean`` (standard library only, the sign path: HTTP, the secrets extension, STS,
  telemetry, audit).
* :mod:`.core` - the domain, with no AWS SDK, powertools or adapter in it: ``keys``, ``callers``, ``issuance``,
  ``lifecycle``, plus ``settings``, ``errors``, ``durations`` and ``ports`` (every Protocol the adapters meet).

The sign path (core.keys, core.callers, core.issuance, adapters.lean, bootstrap.sign) never loads the lifecycle,
jwcrypto, boto3 or powertools. Map and rules: docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
