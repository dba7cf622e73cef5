"""jwks-rotator: signing-key lifecycle, JWKS publishing and JWT signing on AWS.

The domain lives in plain modules shared by every Lambda function (through
the layer), the CLI and the tests:

* :mod:`.config` - settings, defaults and the safety rules between them
* :mod:`.algorithms`, :mod:`.keys` - the algorithm allow-list, keys and JWKs
* :mod:`.keyring`, :mod:`.lifecycle` - the keyring and its pure state machine
* :mod:`.store`, :mod:`.publisher`, :mod:`.rotation` - Secrets Manager, S3/CloudFront, the service
* :mod:`.jwks` - the public documents
"""

__version__ = "0.1.0"
