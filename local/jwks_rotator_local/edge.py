"""A local stand-in for the CloudFront distribution in front of the JWKS bucket.

moto answers any plain HTTP GET of ``.../.well-known/jwks.json`` with a dummy Cognito JWKS, so HTTP clients must
not read the documents from moto directly. :class:`LocalEdge` reads them with boto3 ``get_object`` and serves
them the way CloudFront would (stored headers, ``ETag``/304, and with ``cache=True`` a CDN cache that honours
``max-age`` and invalidations), so a missing or late invalidation shows up as stale documents, as in production.
The cache rules: docs/design/local-cloud.md, "The edge". Given several origins (an origin group over buckets in two
regions), a request goes to the first and, as CloudFront's origin failover does, to the next one when the first answers
403, 404 or 5xx or cannot be reached (a region outage); only a success is cached, whichever origin gave it.

Stable API (used by the local stack, interop tests and the soak)::

    edge = LocalEdge(s3_client, bucket, cloudfront_client=cf, distribution_id=dist_id)
    base_url = edge.start()          # "http://127.0.0.1:PORT"
    edge.url                         # same
    edge.stats                       # EdgeStats: hits, origin_fetches, invalidations_seen
    edge.serve_from(bucket, dist_id, origins=[EdgeOrigin(s3_a, bucket_a), EdgeOrigin(s3_b, bucket_b)])  # an origin group
    edge.check_invalidations()       # poll CloudFront now (normally throttled, on each request)
    edge.purge()                     # drop the whole cache
    edge.stop()
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from jwks_rotator.core.lifecycle.documents import DISCOVERY_PATH, JWKS_PATH

from .loopback_server import LoopbackServer

SERVED_PATHS: tuple[str, ...] = ("/" + JWKS_PATH, "/" + DISCOVERY_PATH)
INVALIDATION_POLL_SECONDS = 0.25
_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(no-store|no-cache|private)\s*(?:,|$|=)", re.IGNORECASE)


def cache_lifetime(cache_control: str | None) -> int:
    """Seconds a shared cache may keep a response with this ``Cache-Control`` (0: do not cache)."""
    if not cache_control or _NO_CACHE.search(cache_control):
        return 0
    found = {name.lower(): int(value) for name, value in _MAX_AGE.findall(cache_control)}
    return found.get("s-maxage", found.get("max-age", 0))


@dataclass
class EdgeStats:
    """Counters for tests and the soak: requests served from cache, fetches from S3, invalidations applied."""

    requests: int = 0
    hits: int = 0
    origin_fetches: int = 0
    invalidations_seen: int = 0
    failovers: int = 0
    """Fetches the first origin failed and the next one was asked (an origin group's failover)."""


@dataclass(frozen=True)
class EdgeOrigin:
    """One origin of the edge: a bucket and the S3 client that reads it (its region signs the reads)."""

    s3: Any
    bucket: str
    name: str = ""


@dataclass(frozen=True)
class _Entry:
    status: int
    body: bytes
    content_type: str
    cache_control: str
    etag: str
    last_modified: str
    stored_at: float
    lifetime: int


def _etag_matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


class LocalEdge:
    """Serves the published documents from S3 over HTTP on loopback, optionally caching like a CDN."""

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        *,
        cloudfront_client: Any = None,
        distribution_id: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        cache: bool = True,
        clock: Callable[[], float] = time.monotonic,
        invalidation_poll_seconds: float = INVALIDATION_POLL_SECONDS,
    ) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._origins: tuple[EdgeOrigin, ...] = (EdgeOrigin(s3_client, bucket),)
        self._cloudfront = cloudfront_client
        self._distribution_id = distribution_id
        self._host = host
        self._port = port
        self._cache_enabled = cache
        self._clock = clock
        self._poll_every = invalidation_poll_seconds
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._last_poll = float("-inf")
        self._seen_invalidations: set[str] = set()
        self._http = LoopbackServer(_EdgeHandler, self, host=host, port=port, name="LocalEdge")
        self.stats = EdgeStats()

    # --- lifecycle -------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``); valid after :meth:`start`."""
        return self._http.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def bind(self) -> str:
        """Open the listening socket (so the URL is known) without serving yet; returns the base URL."""
        if not self._http.bound:
            self._http.bind()
            # Invalidations made before the edge existed concern caches it never had.
            self._seen_invalidations = set(self._list_invalidation_ids())
        return self.url

    def serve_from(self, bucket: str, distribution_id: str = "", *, origins: Sequence[EdgeOrigin] = ()) -> None:
        """Name the bucket (and distribution) once they exist: a stack whose issuer is this edge's URL binds first.

        ``origins``: an origin group instead (the first is the primary; ``bucket`` is then only informative).
        """
        self._bucket, self._distribution_id = bucket, distribution_id
        self._origins = tuple(origins) or (EdgeOrigin(self._s3, bucket),)
        self._seen_invalidations = set(self._list_invalidation_ids())

    @property
    def origins(self) -> tuple[EdgeOrigin, ...]:
        """The origins in the order they are asked."""
        return self._origins

    def start(self) -> str:
        """Bind if needed and serve in a background thread; returns the base URL."""
        self.bind()
        return self._http.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._http.stop()

    # --- cache control ---------------------------------------------------
    def purge(self) -> None:
        """Drop every cached document."""
        with self._lock:
            self._cache.clear()

    def check_invalidations(self) -> int:
        """Poll CloudFront now; drop cached paths named by new invalidations. Returns how many were new."""
        with self._poll_lock:
            self._last_poll = time.monotonic()
            new = [i for i in self._list_invalidation_ids() if i not in self._seen_invalidations]
            for invalidation_id in new:
                paths = self._invalidation_paths(invalidation_id)
                self._drop(paths)
                self._seen_invalidations.add(invalidation_id)
                self.stats.invalidations_seen += 1
            return len(new)

    def _maybe_check_invalidations(self) -> None:
        if self._cloudfront is None or not self._distribution_id:
            return
        if time.monotonic() - self._last_poll < self._poll_every:
            return
        with contextlib.suppress(ClientError, BotoCoreError):  # CloudFront unreachable: keep serving what the cache holds, as an edge would
            self.check_invalidations()

    def _list_invalidation_ids(self) -> list[str]:
        if self._cloudfront is None or not self._distribution_id:
            return []
        ids: list[str] = []
        marker = ""
        while True:
            kwargs: dict[str, Any] = {"DistributionId": self._distribution_id}
            if marker:
                kwargs["Marker"] = marker
            listing = self._cloudfront.list_invalidations(**kwargs).get("InvalidationList", {})
            ids.extend(str(item["Id"]) for item in listing.get("Items", []) or [])
            marker = listing.get("NextMarker", "")
            if not listing.get("IsTruncated") or not marker:
                return ids

    def _invalidation_paths(self, invalidation_id: str) -> list[str]:
        response = self._cloudfront.get_invalidation(DistributionId=self._distribution_id, Id=invalidation_id)
        return list(response["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", []) or [])

    def _drop(self, patterns: list[str]) -> None:
        with self._lock:
            for cached in list(self._cache):
                for pattern in patterns:
                    if (pattern.endswith("*") and cached.startswith(pattern[:-1])) or cached == pattern:
                        del self._cache[cached]
                        break

    # --- serving ---------------------------------------------------------
    def lookup(self, path: str) -> tuple[_Entry, int | None, bool]:
        """The response for ``path``, its ``Age`` (None when the cache is off or passes it by) and whether it was a hit."""
        with self._lock:
            self.stats.requests += 1
        if not self._cache_enabled:
            return self._fetch(path), None, False
        self._maybe_check_invalidations()
        now = self._clock()
        with self._lock:
            entry = self._cache.get(path)
            if entry is not None and now - entry.stored_at < entry.lifetime:
                self.stats.hits += 1
                return entry, int(now - entry.stored_at), True
        entry = self._fetch(path)
        if entry.status == HTTPStatus.OK and entry.lifetime > 0:
            with self._lock:
                self._cache[path] = entry
            return entry, 0, False
        return entry, None, False

    def _fetch(self, path: str) -> _Entry:
        """The first origin's answer, or the next one's when it fails (403, 404, 5xx, unreachable)."""
        entry = _Entry(HTTPStatus.BAD_GATEWAY, b"", "text/plain", "no-store", "", "", self._clock(), 0)
        for index, origin in enumerate(self._origins):
            if index > 0:
                with self._lock:
                    self.stats.failovers += 1
            entry = self._fetch_from(origin, path)
            if entry.status == HTTPStatus.OK:
                return entry
        return entry

    def _fetch_from(self, origin: EdgeOrigin, path: str) -> _Entry:
        with self._lock:
            self.stats.origin_fetches += 1
        now = self._clock()
        try:
            response = origin.s3.get_object(Bucket=origin.bucket, Key=path.lstrip("/"))
            body = response["Body"].read()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = HTTPStatus.NOT_FOUND if code in ("NoSuchKey", "404", "NotFound") else HTTPStatus.BAD_GATEWAY
            return _Entry(status, b"", "text/plain", "no-store", "", "", now, 0)
        except BotoCoreError:
            return _Entry(HTTPStatus.BAD_GATEWAY, b"", "text/plain", "no-store", "", "", now, 0)
        cache_control = str(response.get("CacheControl") or "")
        last_modified = response.get("LastModified")
        return _Entry(
            status=HTTPStatus.OK,
            body=body,
            content_type=str(response.get("ContentType") or "application/octet-stream"),
            cache_control=cache_control,
            etag=str(response.get("ETag") or ""),
            last_modified=last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT") if last_modified else "",
            stored_at=now,
            lifetime=cache_lifetime(cache_control),
        )


class _EdgeHandler(BaseHTTPRequestHandler):
    owner: LocalEdge
    server_version = "jwks-rotator-local-edge"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        path = urlsplit(self.path).path
        if path not in SERVED_PATHS:
            self._plain(HTTPStatus.NOT_FOUND, b"not found\n", with_body)
            return
        entry, age, hit = self.owner.lookup(path)
        if entry.status != HTTPStatus.OK:
            self._plain(HTTPStatus(entry.status), HTTPStatus(entry.status).phrase.encode() + b"\n", with_body)
            return
        not_modified = bool(entry.etag) and _etag_matches(self.headers.get("If-None-Match", ""), entry.etag)
        self.send_response(HTTPStatus.NOT_MODIFIED if not_modified else HTTPStatus.OK)
        if entry.etag:
            self.send_header("ETag", entry.etag)
        if entry.cache_control:
            self.send_header("Cache-Control", entry.cache_control)
        if entry.last_modified:
            self.send_header("Last-Modified", entry.last_modified)
        if age is not None:
            self.send_header("Age", str(age))
            self.send_header("X-Cache", "Hit from local-edge" if hit else "Miss from local-edge")
        if not_modified:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Type", entry.content_type)
        self.send_header("Content-Length", str(len(entry.body)))
        self.end_headers()
        if with_body:
            self.wfile.write(entry.body)

    def _plain(self, status: HTTPStatus, body: bytes, with_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the local stack prints what matters itself."""
