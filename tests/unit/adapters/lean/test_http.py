"""The TLS context the sign function uses for STS: Amazon Trust Services' roots only, shipped beside the HTTP transport."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from jwks_rotator.adapters.lean.http import AMAZON_ROOTS, amazon_roots_context, ca_file_context
from jwks_rotator.adapters.lean.sts_identity import StsEndpoint

EXPECTED = {"Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4", "Starfield Services Root Certificate Authority - G2"}


@pytest.mark.filterwarnings("ignore:Parsed a serial number:cryptography.utils.CryptographyDeprecationWarning")  # Starfield G2: serial 0
def test_the_shipped_roots_are_amazons_five_self_signed_cas_valid_today() -> None:
    certificates = x509.load_pem_x509_certificates(Path(AMAZON_ROOTS).read_bytes())
    names = {c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value for c in certificates}
    assert names == EXPECTED
    now = datetime.now(UTC)
    for certificate in certificates:
        assert certificate.issuer == certificate.subject
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc


def test_the_context_verifies_hostnames_and_certificates_and_is_built_once() -> None:
    context = amazon_roots_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == 5
    assert amazon_roots_context() is context and ca_file_context(AMAZON_ROOTS) is context


def test_sts_endpoints_pick_their_trust_roots() -> None:
    assert StsEndpoint.from_environment({"AWS_REGION": "eu-west-1"}).tls_context() is amazon_roots_context()
    china = StsEndpoint.from_environment({"AWS_REGION": "cn-north-1"})
    assert china.host == "sts.cn-north-1.amazonaws.com.cn" and china.tls_context() is not amazon_roots_context()
    custom = StsEndpoint.from_environment({"AWS_REGION": "eu-west-1", "STS_CA_BUNDLE": str(AMAZON_ROOTS)}, local=True)  # the local stack only
    assert custom.ca_file == AMAZON_ROOTS
