"""LambdaApi: the Invoke API as `sam local start-lambda` offers it, driven with boto3's lambda client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from jwks_rotator_local.lambda_api import LambdaApi, LocalFunction

pytestmark = pytest.mark.integration

ran_async = threading.Event()
barrier = threading.Barrier(2, timeout=10)


def echo(event: Any, context: Any) -> dict[str, Any]:
    return {
        "event": event,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining": context.get_remaining_time_in_millis(),
    }


def boom(event: Any, context: Any) -> None:
    raise ValueError("the handler failed")


def unserialisable(event: Any, context: Any) -> Any:
    return {"value": object()}


def mark(event: Any, context: Any) -> str:
    ran_async.set()
    return "ok"


def meet(event: Any, context: Any) -> int:
    return barrier.wait()  # returns only when two invocations run at the same time


@pytest.fixture(scope="module")
def api() -> Iterator[LambdaApi]:
    api = LambdaApi(
        [
            LocalFunction("Echo", echo, memory_limit_in_mb=128, timeout_seconds=5),
            LocalFunction("Boom", boom),
            LocalFunction("Unserialisable", unserialisable),
            LocalFunction("Mark", mark),
            LocalFunction("Meet", meet),
        ]
    )
    api.start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def lam(api: LambdaApi) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=api.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def payload(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())


def test_request_response_returns_the_handler_result_with_a_context(lam):
    response = lam.invoke(FunctionName="Echo", Payload=json.dumps({"hello": "world"}))
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    body = payload(response)
    assert body["event"] == {"hello": "world"}
    assert body["function_name"] == "Echo"
    assert body["memory"] == 128
    assert body["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Echo"
    assert body["request_id"]
    assert 0 < body["remaining"] <= 5000


def test_function_may_be_named_by_arn_or_with_a_qualifier(lam):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:Echo"
    assert payload(lam.invoke(FunctionName=arn, Payload=b"{}"))["function_name"] == "Echo"
    assert payload(lam.invoke(FunctionName="Echo:$LATEST", Payload=b"{}"))["function_name"] == "Echo"


def test_unknown_function_is_resource_not_found(lam):
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="NoSuchFunction", Payload=b"{}")
    error = caught.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "NoSuchFunction" in error["Error"]["Message"]


def test_handler_exception_is_unhandled_without_stack_trace(lam):
    response = lam.invoke(FunctionName="Boom", Payload=b"{}")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload(response) == {"errorMessage": "the handler failed", "errorType": "ValueError"}


def test_unserialisable_result_is_a_marshal_error(lam):
    response = lam.invoke(FunctionName="Unserialisable", Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert payload(response)["errorType"] == "Runtime.MarshalError"


def test_invalid_json_payload_is_refused(lam):
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="Echo", Payload=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_event_invocation_answers_202_and_runs_in_the_background(lam):
    response = lam.invoke(FunctionName="Mark", InvocationType="Event", Payload=b"{}")
    assert response["StatusCode"] == 202
    assert ran_async.wait(timeout=10)


def test_dry_run_answers_204(lam):
    assert lam.invoke(FunctionName="Echo", InvocationType="DryRun", Payload=b"{}")["StatusCode"] == 204


def test_concurrent_invocations_run_at_the_same_time(lam):
    # Each "Meet" invocation blocks until another one is running: a serial server would time out the barrier.
    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(lambda _: lam.invoke(FunctionName="Meet", Payload=b"{}"), range(2)))
    assert all("FunctionError" not in r for r in responses)
    assert sorted(payload(r) for r in responses) == [0, 1]
