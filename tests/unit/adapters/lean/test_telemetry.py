"""The sign function's log lines and EMF records, written without powertools, keep powertools' shapes and names."""

from __future__ import annotations

import io
import json

from jwks_rotator.adapters.lean.telemetry import MAX_METRICS_PER_RECORD, EmfMetrics, JsonLogger

NOW = 1_795_000_000.25


def test_a_log_line_has_powertools_keys_in_order_and_the_extra_fields() -> None:
    stream = io.StringIO()
    logger = JsonLogger("sign", stream=stream, environ={}, clock=lambda: NOW)
    logger.warning("key cache read found no signing key", extra={"kid": "k1", "reason": "revoked"})
    line = json.loads(stream.getvalue())
    assert list(line) == ["level", "location", "message", "timestamp", "service", "function", "kid", "reason"]
    assert line["level"] == "WARNING" and line["service"] == "jwks-rotator" and line["function"] == "sign"
    assert line["timestamp"] == "2026-11-18 11:06:40,250+0000"
    assert line["location"].startswith("test_a_log_line_has_powertools_keys")


def test_the_level_comes_from_powertools_log_level() -> None:
    stream = io.StringIO()
    logger = JsonLogger("sign", stream=stream, environ={"POWERTOOLS_LOG_LEVEL": "warning"})
    logger.info("not written")
    logger.debug("not written")
    logger.error("written", extra={"error": "internal_error"})
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["written"]
    assert JsonLogger("sign", environ={}).level == 20  # INFO by default


def test_an_emf_record_names_each_count_with_the_service_dimension() -> None:
    stream = io.StringIO()
    metrics = EmfMetrics(stream=stream, environ={}, clock=lambda: NOW)
    metrics.add_count("TokensIssued_ES256", 5)
    metrics.add_count("Refusals_unauthenticated", 1)
    metrics.add_count("TokensIssued_ES256", 2)
    metrics.flush_metrics()
    record = json.loads(stream.getvalue())
    assert record["_aws"] == {
        "Timestamp": int(NOW * 1000),
        "CloudWatchMetrics": [{"Namespace": "JwksRotator", "Dimensions": [["service"]],
                               "Metrics": [{"Name": "TokensIssued_ES256", "Unit": "Count"}, {"Name": "Refusals_unauthenticated", "Unit": "Count"}]}],
    }
    assert record["service"] == "jwks-rotator" and record["TokensIssued_ES256"] == [7.0] and record["Refusals_unauthenticated"] == [1.0]
    metrics.flush_metrics()  # nothing counted since: nothing written
    assert len(stream.getvalue().splitlines()) == 1


def test_more_than_100_metrics_are_split_across_records() -> None:
    stream = io.StringIO()
    metrics = EmfMetrics(stream=stream, environ={})
    for index in range(MAX_METRICS_PER_RECORD + 5):
        metrics.add_count(f"Refusals_code{index}", 1)
    metrics.flush_metrics()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [len(r["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for r in records] == [MAX_METRICS_PER_RECORD, 5]


def test_disabled_metrics_and_cleared_counts_write_nothing() -> None:
    stream = io.StringIO()
    disabled = EmfMetrics(stream=stream, environ={"POWERTOOLS_METRICS_DISABLED": "true"})
    disabled.add_count("TokensIssued_ES256", 1)
    disabled.flush_metrics()
    cleared = EmfMetrics(stream=stream, environ={})
    cleared.add_count("TokensIssued_ES256", 1)
    cleared.clear_metrics()
    cleared.flush_metrics()
    assert stream.getvalue() == ""
