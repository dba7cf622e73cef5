"""LocalEdge: serves the published documents from S3 over real HTTP, caching like a CDN."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from jwks_rotator_local.edge import LocalEdge, cache_lifetime
from jwks_rotator_testkit.clock import FakeClock

pytestmark = pytest.mark.integration

JWKS_KEY = ".well-known/jwks.json"


def put(resources, body: dict, *, cache_control: str = "public, max-age=60", key: str = JWKS_KEY) -> None:
    resources.client("s3").put_object(
        Bucket=resources.bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json", CacheControl=cache_control
    )


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def invalidate(resources, path: str) -> None:
    resources.client("cloudfront").create_invalidation(
        DistributionId=resources.distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": [path]}, "CallerReference": path + str(id(resources))},
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def edge(aws_resources, clock) -> Iterator[LocalEdge]:
    edge = LocalEdge(
        aws_resources.client("s3"),
        aws_resources.bucket,
        cloudfront_client=aws_resources.client("cloudfront"),
        distribution_id=aws_resources.distribution_id,
        clock=clock.monotonic,
    )
    edge.start()
    yield edge
    edge.stop()


def test_serves_stored_headers_and_etag_with_304(aws_resources, edge):
    put(aws_resources, {"keys": [{"kid": "k1"}]})
    status, headers, body = get(edge.url + "/.well-known/jwks.json")
    assert status == 200
    assert json.loads(body) == {"keys": [{"kid": "k1"}]}
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "public, max-age=60"
    etag = headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    status, headers, body = get(edge.url + "/.well-known/jwks.json", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["ETag"] == etag

    status, headers, body = get(edge.url + "/.well-known/jwks.json", method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str(len(json.dumps({"keys": [{"kid": "k1"}]})))


def test_serves_the_real_object_not_motos_dummy_jwks(aws_resources, edge):
    put(aws_resources, {"keys": [{"kid": "ours"}]})
    _, _, body = get(edge.url + "/.well-known/jwks.json")
    assert [k["kid"] for k in json.loads(body)["keys"]] == ["ours"]


def test_404_for_other_paths_and_missing_documents(aws_resources, edge):
    assert get(edge.url + "/")[0] == 404
    assert get(edge.url + "/.well-known/other.json")[0] == 404
    assert get(edge.url + "/.well-known/openid-configuration")[0] == 404  # not published yet


def test_caches_for_max_age_and_sends_age(aws_resources, edge, clock):
    put(aws_resources, {"v": 1})
    assert json.loads(get(edge.url + "/.well-known/jwks.json")[2]) == {"v": 1}
    put(aws_resources, {"v": 2})  # no invalidation: the edge keeps serving its copy
    clock.advance(30)
    _status, headers, body = get(edge.url + "/.well-known/jwks.json")
    assert json.loads(body) == {"v": 1}
    assert headers["Age"] == "30"
    assert headers["X-Cache"].startswith("Hit")
    clock.advance(31)  # past max-age=60
    _status, headers, body = get(edge.url + "/.well-known/jwks.json")
    assert json.loads(body) == {"v": 2}
    assert headers["Age"] == "0"
    assert edge.stats.origin_fetches == 2 and edge.stats.hits == 1


def test_drops_cached_paths_on_a_new_invalidation(aws_resources, edge):
    put(aws_resources, {"v": 1})
    put(aws_resources, {"issuer": "a"}, key=".well-known/openid-configuration")
    get(edge.url + "/.well-known/jwks.json")
    get(edge.url + "/.well-known/openid-configuration")
    put(aws_resources, {"v": 2})
    put(aws_resources, {"issuer": "b"}, key=".well-known/openid-configuration")
    invalidate(aws_resources, "/.well-known/jwks.json")
    assert edge.check_invalidations() == 1
    assert json.loads(get(edge.url + "/.well-known/jwks.json")[2]) == {"v": 2}
    # The discovery document was not invalidated: still the cached copy.
    assert json.loads(get(edge.url + "/.well-known/openid-configuration")[2]) == {"issuer": "a"}
    invalidate(aws_resources, "/*")
    edge.check_invalidations()
    assert json.loads(get(edge.url + "/.well-known/openid-configuration")[2]) == {"issuer": "b"}


def test_without_cache_every_request_reads_s3(aws_resources, clock):
    edge = LocalEdge(aws_resources.client("s3"), aws_resources.bucket, cache=False, clock=clock.monotonic)
    edge.start()
    try:
        put(aws_resources, {"v": 1})
        assert json.loads(get(edge.url + "/.well-known/jwks.json")[2]) == {"v": 1}
        put(aws_resources, {"v": 2})
        _status, headers, body = get(edge.url + "/.well-known/jwks.json")
        assert json.loads(body) == {"v": 2}
        assert "Age" not in headers
    finally:
        edge.stop()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("public, max-age=60", 60), ("max-age=60, s-maxage=5", 5), ("no-store", 0), ("", 0), ("private, max-age=9", 0)],
)
def test_cache_lifetime(header, seconds):
    assert cache_lifetime(header) == seconds
