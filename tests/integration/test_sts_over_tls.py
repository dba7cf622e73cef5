"""Proofs are replayed to STS over HTTPS with a TLS context of Amazon's roots only; a stand-in with a test CA proves it.

The sign function trusts Amazon Trust Services' roots for STS (a context of five certificates, not the
system bundle). Locally, the signature-checking STS front end serves HTTPS with a certificate from a
throwaway CA that the verifier trusts through ``STS_CA_BUNDLE``: the replay then pays for the TLS
handshake as on Lambda, and a verifier left on Amazon's roots refuses the stand-in's certificate.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jwks_rotator.bootstrap.callers import build_caller_verifier
from jwks_rotator.core.errors import SigningUnavailableError
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.local_tls import LocalCertificateAuthority
from jwks_rotator_testkit.callers import SIGN_FUNCTION_NAME, CountingStsVerifier, moto_role_session
from jwks_rotator_testkit.moto import REGION

pytestmark = pytest.mark.integration
SETTINGS = Settings(issuer="https://issuer.example", keyring_secret_id="keyring")


@pytest.fixture
def https_sts(moto_endpoint: str) -> Iterator[tuple[CountingStsVerifier, LocalCertificateAuthority]]:
    with LocalCertificateAuthority() as ca:
        sts = CountingStsVerifier(moto_endpoint, region=REGION)
        sts.start(tls=ca.server_context())
        try:
            yield sts, ca
        finally:
            sts.stop()


def test_a_proof_is_replayed_over_https_to_a_stand_in_the_verifier_trusts(moto_endpoint: str, https_sts: tuple[CountingStsVerifier, LocalCertificateAuthority]) -> None:
    sts, ca = https_sts
    assert sts.url.startswith("https://127.0.0.1:")
    caller = moto_role_session(moto_endpoint, "tls-orders-service", session="tls")
    verifier = build_caller_verifier(SETTINGS, {"AWS_REGION": REGION, "STS_ENDPOINT_URL": sts.url, "STS_CA_BUNDLE": str(ca.ca_file)}, local=True)
    identity = verifier.verify(caller.proof(sts_endpoint_url=sts.url, signer=SIGN_FUNCTION_NAME), {SIGN_FUNCTION_NAME})
    assert identity.sts_arn == caller.sts_arn
    assert sts.replays == 1


def test_a_verifier_on_amazons_roots_refuses_a_certificate_they_did_not_issue(moto_endpoint: str, https_sts: tuple[CountingStsVerifier, LocalCertificateAuthority]) -> None:
    sts, _ = https_sts
    caller = moto_role_session(moto_endpoint, "tls-orders-service", session="untrusted")
    verifier = build_caller_verifier(SETTINGS, {"AWS_REGION": REGION, "STS_ENDPOINT_URL": sts.url}, local=True)  # no STS_CA_BUNDLE
    with pytest.raises(SigningUnavailableError, match="STS did not answer"):
        verifier.verify(caller.proof(sts_endpoint_url=sts.url, signer=SIGN_FUNCTION_NAME), {SIGN_FUNCTION_NAME})
    assert sts.replays == 0  # the handshake failed: the proof never left the verifier


def test_an_unreadable_ca_bundle_is_a_transport_failure_not_a_crash(moto_endpoint: str, https_sts: tuple[CountingStsVerifier, LocalCertificateAuthority], tmp_path) -> None:
    sts, _ = https_sts
    caller = moto_role_session(moto_endpoint, "tls-orders-service", session="missing-ca")
    verifier = build_caller_verifier(SETTINGS, {"AWS_REGION": REGION, "STS_ENDPOINT_URL": sts.url, "STS_CA_BUNDLE": str(tmp_path / "none.pem")}, local=True)
    with pytest.raises(SigningUnavailableError):
        verifier.verify(caller.proof(sts_endpoint_url=sts.url, signer=SIGN_FUNCTION_NAME), {SIGN_FUNCTION_NAME})
