"""Regional faults of the local cloud: a region in outage answers every AWS call with an error at once, never a hang.

A request's region is its SigV4 credential scope (``Authorization: ... Credential=AKID/DATE/REGION/SERVICE/...``,
or ``X-Amz-Credential`` in a presigned URL), as one AWS endpoint serving every region reads it; an unsigned
request has no region and no fault applies to it. In an outage a Lambda API call is answered as Lambda's
``ServiceException`` (HTTP 500) and any other call with HTTP 503 in its protocol's error shape, so each SDK
raises the error it raises on AWS. The switch is an HTTP control path on the AWS endpoint (:data:`CONTROL_PREFIX`,
which no S3 bucket name can take), used by ``jwks-rotator --endpoint-url URL fault ...``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from .replica_lag import ReplicaLag

CONTROL_PREFIX = "/_jwks-rotator/faults"
"""``GET`` it for the faults in force; ``PUT``/``DELETE`` ``CONTROL_PREFIX/region-outage/REGION`` starts/ends an outage;
``PUT CONTROL_PREFIX/replica-lag/REGION/SECONDS`` sets a region's replica lag (0 ends it)."""
REGION_PATTERN = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request")
_LAMBDA_PATH = "/2015-03-31/functions/"

Response = tuple[int, dict[str, str], bytes]
"""(status, headers, body) of an answer the local cloud sends itself."""


def scope_of(path: str, headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(region, service) of a request's SigV4 credential scope, or None when it is not signed."""
    lower = {name.lower(): value for name, value in headers.items()}
    match = _SCOPE.search(lower.get("authorization", ""))
    if match is not None:
        return match["region"], match["service"]
    credential = parse_qs(urlsplit(path).query).get("X-Amz-Credential")
    if credential:
        parts = unquote(credential[0]).split("/")
        if len(parts) == 5 and parts[4] == "aws4_request":
            return parts[2], parts[3]
    return None


class RegionFaults:
    """The regions in outage (thread-safe); shared by every server of the local cloud."""

    def __init__(self) -> None:
        self._outages: set[str] = set()
        self._lock = threading.Lock()
        self.replica_lag: ReplicaLag | None = None
        """The cloud's replica lag, set through the same control path when present (:mod:`.replica_lag`)."""

    def start_outage(self, region: str) -> None:
        """Every call signed for ``region`` fails from now on (idempotent)."""
        with self._lock:
            self._outages.add(_checked(region))

    def clear(self, region: str) -> None:
        """``region`` answers again (idempotent)."""
        with self._lock:
            self._outages.discard(_checked(region))

    def outages(self) -> list[str]:
        with self._lock:
            return sorted(self._outages)

    def in_outage(self, region: str | None) -> bool:
        with self._lock:
            return region is not None and region in self._outages

    def answer_for(self, method: str, path: str, headers: Mapping[str, str]) -> Response | None:
        """The error a request gets because its region is in outage, or None when it goes through."""
        scope = scope_of(path, headers)
        if scope is None or not self.in_outage(scope[0]):
            return None
        region, service = scope
        return outage_response(region, service, path, headers)

    def control(self, method: str, path: str) -> Response:
        """Serve the control path: ``GET`` the state, ``PUT``/``DELETE`` ``.../region-outage/REGION``,
        ``PUT .../replica-lag/REGION/SECONDS`` (0 ends it; needs :attr:`replica_lag`)."""
        rest = urlsplit(path).path[len(CONTROL_PREFIX) :].strip("/")
        if method == "GET" and rest == "":
            return _json(200, self.state())
        kind, _, region = rest.partition("/")
        if kind == "replica-lag" and self.replica_lag is not None and method == "PUT" and "/" in region:
            return self._set_lag(*region.split("/", 1))
        if kind != "region-outage" or method not in ("PUT", "DELETE"):
            usage = "PUT or DELETE /_jwks-rotator/faults/region-outage/REGION; PUT /_jwks-rotator/faults/replica-lag/REGION/SECONDS"
            return _json(404, {"error": "unknown_fault", "message": usage})
        if not REGION_PATTERN.fullmatch(region):
            return _json(400, {"error": "invalid_region", "message": "not a region name (like eu-west-1)"})
        if method == "PUT":
            self.start_outage(region)
        else:
            self.clear(region)
        return _json(200, self.state())

    def state(self) -> dict[str, object]:
        """The faults in force: ``{"region-outage": [REGION, ...], "replica-lag": {REGION: SECONDS}}``."""
        lags = self.replica_lag.lags() if self.replica_lag is not None else {}
        return {"region-outage": self.outages(), "replica-lag": lags}

    def _set_lag(self, region: str, seconds: str) -> Response:
        if not REGION_PATTERN.fullmatch(region):
            return _json(400, {"error": "invalid_region", "message": "not a region name (like eu-west-1)"})
        assert self.replica_lag is not None
        try:
            self.replica_lag.set_lag(region, float(seconds))
        except ValueError as exc:
            return _json(400, {"error": "invalid_lag", "message": str(exc) if "replica lag" in str(exc) else "not a number of seconds"})
        return _json(200, self.state())


def _checked(region: str) -> str:
    if not REGION_PATTERN.fullmatch(region):
        raise ValueError("not a region name (like eu-west-1)")
    return region


def _json(status: int, document: object) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


def outage_response(region: str, service: str, path: str, headers: Mapping[str, str]) -> Response:
    """The error of a call to ``service`` in ``region`` during an outage, shaped as the service's protocol shapes errors."""
    message = f"{service} in {region} is unavailable (local fault: region-outage)"
    request_id = str(uuid.uuid4())
    lower = {name.lower() for name in headers}
    if service == "lambda" or urlsplit(path).path.startswith(_LAMBDA_PATH):  # rest-json: the type is in a header
        body = json.dumps({"Type": "Service", "message": message}).encode()
        return 500, {"Content-Type": "application/json", "x-amzn-ErrorType": "ServiceException"}, body
    if "x-amz-target" in lower:  # JSON protocols (Secrets Manager, KMS, SSM, Logs, ...)
        body = json.dumps({"__type": "ServiceUnavailableException", "message": message}).encode()
        return 503, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id}, body
    if service == "s3":
        xml = f"<Error><Code>ServiceUnavailable</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        return 503, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, xml.encode()
    xml = (  # query and rest-xml protocols (STS, IAM, CloudFormation, CloudFront)
        f"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>{message}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return 503, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xml.encode()
