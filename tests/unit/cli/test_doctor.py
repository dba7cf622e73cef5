"""doctor's gathering: an AWS refusal while reading one thing is that check's warning, never the end of the report."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.settings import Settings
from jwks_rotator_cli import doctor
from jwks_rotator_cli.context import CliContext
from jwks_rotator_cli.doctor import kms_check, signer_check

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


class DeniedKms:
    def describe_key(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeKey")


class Obj:
    def client(self, service: str, **_: Any) -> Any:
        assert service == "kms"
        return DeniedKms()


def test_a_kms_key_not_describable_here_warns_instead_of_ending_doctor():
    key = generate_key("ES256", NOW, state=KeyState.ACTIVE).with_changes(kms_key_arn="arn:aws:kms:us-east-1:1:key/k")
    check = kms_check(Obj(), Keyring(keys=(key,)))  # type: ignore[arg-type]
    assert check.name == "kms custody" and check.result == "warn" and "AccessDeniedException" in check.detail and check.todo


class DeniedLambda:
    def get_function_configuration(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetFunctionConfiguration")


class LambdaObj:
    def lambda_endpoint(self) -> None:
        return None

    def client(self, service: str, **_: Any) -> Any:
        assert service == "lambda"
        return DeniedLambda()


class Stack:
    sign_function_name = "sign"
    demo_caller_role_arn = None


def test_a_sign_function_not_readable_here_is_the_signer_check_failing_not_the_end_of_doctor():
    check = signer_check(LambdaObj(), Stack(), None, None)  # type: ignore[arg-type]
    assert check.name == "signer" and check.result == "fail" and "AccessDeniedException" in check.detail


def test_a_document_served_one_byte_at_a_time_ends_at_the_deadline(monkeypatch):
    """Each read has a socket timeout; a server dripping a byte within it must still not hold doctor past its deadline."""
    stop = threading.Event()

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            while not stop.is_set():
                self.wfile.write(b" ")
                self.wfile.flush()
                stop.wait(0.1)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(doctor, "HTTP_TIMEOUT", 0.5)
    monkeypatch.setattr(doctor, "HTTP_DEADLINE", 1.0)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(doctor.fetch(f"http://127.0.0.1:{server.server_address[1]}/jwks.json")), daemon=True)
    try:
        worker.start()
        worker.join(30)  # liveness, not speed: without a deadline this read lasts ~28 hours
        assert not worker.is_alive()
        assert result[0].status is None and "no complete answer" in result[0].error
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


class Published:
    jwks_url = "https://issuer.example/.well-known/jwks.json"
    issuer = "https://issuer.example"
    outputs: ClassVar[dict[str, str]] = {"IssuerUrl": "https://issuer.example/.well-known/openid-configuration"}


def test_documents_that_are_not_json_objects_fail_instead_of_being_skipped(monkeypatch):
    headers = {"Content-Type": "application/json", "Cache-Control": "public, max-age=2"}
    monkeypatch.setattr(doctor, "fetch", lambda url: doctor.Fetched(url, 200, headers, b"<html>maintenance</html>" if "jwks" in url else b"[]"))
    settings = Settings.from_mapping({"jwks_max_age": "2s"})
    checks, jwks, _ = doctor.document_checks(Published(), settings)  # type: ignore[arg-type]
    by_name = {check.name: check for check in checks}
    assert jwks is None
    assert by_name["published keys"].result == "fail" and "not a JSON object" in by_name["published keys"].detail
    assert by_name["discovery issuer"].result == "fail" and "not a JSON object" in by_name["discovery issuer"].detail


def test_a_cached_documents_date_counts_its_age():
    """A CDN serves a cached answer with the origin's Date and an Age: the clock fallback is Date + Age, not Date."""
    cached = doctor.Fetched("u", 200, {"Date": "Mon, 07 Dec 2026 03:00:00 GMT", "Age": "1800"})
    assert doctor.served_at(cached) == NOW + timedelta(seconds=1800)
    assert doctor.served_at(doctor.Fetched("u", 200, {"Date": "Mon, 07 Dec 2026 03:00:00 GMT", "Age": "x"})) == NOW
    assert doctor.served_at(doctor.Fetched("u", None)) is None


class RecordingSession:
    """A caller's session whose clients record how they were made; its STS refuses (the check ends there)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []

    def client(self, service: str, **kwargs: Any) -> Any:
        self.made.append((service, kwargs))
        return DeniedSts()


class DeniedSts:
    def get_caller_identity(self) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "ExpiredToken", "Message": "no"}}, "GetCallerIdentity")


def test_the_callers_sts_client_has_the_clis_timeouts(monkeypatch):
    """Every AWS call doctor makes is bounded: a black-holed STS must not take botocore's default 60 s x 5 attempts."""
    session = RecordingSession()
    monkeypatch.setattr(doctor, "caller_session", lambda obj, role: session)
    monkeypatch.setattr(doctor, "function_environment", lambda client, name: {})
    obj = CliContext(None, "us-east-1", "no-state.json")
    check = signer_check(obj, Stack(), None, None)  # type: ignore[arg-type]
    assert check.result == "fail" and "ExpiredToken" in check.detail
    sts = [kwargs for service, kwargs in session.made if service == "sts"]
    assert sts and sts[0]["config"].connect_timeout == 5 and sts[0]["config"].read_timeout == 30
