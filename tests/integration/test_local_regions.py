"""The local stack in two regions: one cloud, a stack per region under one name, the primary first in the list.

Each region's signer is reached through the one AWS endpoint by the request's region and takes only proofs scoped
to it; a region outage stops that region's signer at once (ServiceException) while the other keeps signing; the
edge fails over to the second region's bucket; a region's replica secrets can lag behind their primary and catch up.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from click.testing import CliRunner
from rich.console import Console

from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator_cli.doctor_checks import token_against_jwks
from jwks_rotator_cli.local_state import SIGN_FUNCTION
from jwks_rotator_cli.main import cli
from jwks_rotator_client import SignClient, build_caller_proof
from jwks_rotator_local.command import print_banner
from jwks_rotator_local.local_stack import LocalStackError, RegionOutageError
from jwks_rotator_local.regions import LocalRegions
from jwks_rotator_testkit.fast import fast_settings

pytestmark = pytest.mark.integration

PRIMARY, SECOND = "us-east-1", "eu-west-1"
ONE_ATTEMPT = Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "total_max_attempts": 1})
REQUEST = {"sub": "alice", "aud": "demo"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegions]:
    state = tmp_path_factory.mktemp("regions") / "state.json"
    with LocalRegions([PRIMARY, SECOND], fast_settings(), state_file=state) as cloud:  # started: every region signs
        cloud.state_file = state  # type: ignore[attr-defined]
        yield cloud


@pytest.fixture
def healthy(cloud: LocalRegions) -> Iterator[LocalRegions]:
    yield cloud
    for region in cloud.regions:
        cloud.clear_outage(region)
        cloud.set_replica_lag(region, 0)


def aws(cloud: LocalRegions, service: str, region: str) -> Any:
    return boto3.client(service, endpoint_url=cloud.aws_endpoint, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=ONE_ATTEMPT)


def fault(cloud: LocalRegions, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--endpoint-url", cloud.aws_endpoint, "--state-file", "/nonexistent/state.json", "fault", *args])


def fetch_jwks(cloud: LocalRegions) -> dict[str, Any]:
    with urllib.request.urlopen(cloud.jwks_url, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_each_region_has_a_stack_of_the_one_name_with_the_usual_outputs(cloud: LocalRegions) -> None:
    assert cloud.primary == PRIMARY and cloud.regions == (PRIMARY, SECOND)
    outputs = {region: cloud.outputs(region) for region in cloud.regions}
    for region, out in outputs.items():
        assert {"SignFunctionName", "SignFunctionArn", "JwksUrl", "Issuer"} <= set(out), region
        assert f":{region}:" in out["SignFunctionArn"]
        described = cloud.client("cloudformation", region).describe_stacks(StackName=cloud.stack_name)["Stacks"][0]
        assert described["StackStatus"] == "CREATE_COMPLETE" and f":{region}:" in described["StackId"]
    assert outputs[PRIMARY]["JwksUrl"] == outputs[SECOND]["JwksUrl"] == cloud.jwks_url
    assert outputs[PRIMARY]["Issuer"] == outputs[SECOND]["Issuer"] == cloud.issuer
    parameters = cloud.stack(PRIMARY).deployed_template().parameters
    assert (parameters["PrimaryRegion"], parameters["Regions"]) == (PRIMARY, f"{PRIMARY},{SECOND}")
    assert (parameters["SecondOriginBucket"], parameters["SecondOriginRegion"]) == (cloud.stack(SECOND).resources_or_fail().bucket, SECOND)
    assert cloud.stack(SECOND).deployed_template().parameters["PrimaryRegion"] == PRIMARY
    for region in cloud.regions:  # every setting and the policy apply to each region's stack
        environment = cloud.stack(region).function_environment("RotateFunction")
        assert environment["ROTATION_PERIOD"] == fast_settings()["rotation-period"] and environment["AWS_REGION"] == region
        assert cloud.stack(region).deployed_template().parameters["IssuancePolicyFile"] == str(cloud.stack(PRIMARY).policy_file)


def test_the_banner_lists_the_regions_the_primary_and_one_sts_endpoint(cloud: LocalRegions) -> None:
    out = io.StringIO()
    print_banner(Console(file=out, width=400, color_system=None), cloud, "state.json")
    banner = out.getvalue()
    assert f"  regions         {PRIMARY} (primary: the one writer), {SECOND}  (" in banner
    assert banner.count("  STS endpoint    ") == 1 and f"  STS endpoint    {cloud.sts_endpoint}  (" in banner
    for region in cloud.regions:
        assert f"  Lambda endpoint {cloud.stack(region).lambda_endpoint}  ({region}: functions: SignFunction = " in banner
    assert f"--endpoint-url {cloud.aws_endpoint} --stack {cloud.stack_name} status" in banner


def test_operator_commands_reach_a_secondary_with_region(cloud: LocalRegions) -> None:
    state = cloud.state_file  # type: ignore[attr-defined]
    for region in cloud.regions:
        args = ["--state-file", str(state), "--endpoint-url", cloud.aws_endpoint, "--region", region, "--stack", cloud.stack_name, "status"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert f"keyring arn:aws:secretsmanager:{region}:" in result.output, result.output


def test_every_region_signs_tokens_the_one_jwks_verifies_with_the_primarys_keys(cloud: LocalRegions) -> None:
    for region in cloud.regions:
        assert cloud.can_sign(region) == "", region
    secondary = cloud.stack(SECOND)
    assert "KeyringSecret" not in secondary.deployed_template().resources  # it reads the primary's replica
    replica = cloud.outputs(PRIMARY)["KeyringSecretArn"].replace(f":{PRIMARY}:", f":{SECOND}:")
    assert secondary.function_environment("RotateFunction")["KEYRING_SECRET_ID"] == replica
    assert not secondary.schedule_enabled() and cloud.stack(PRIMARY).schedule_enabled()


def test_a_client_with_aws_endpoint_url_sts_signing_for_eu_west_1_reaches_that_regions_signer(
    cloud: LocalRegions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", cloud.sts_endpoint)
    credentials = cloud.stack(SECOND).caller_session().get_credentials().get_frozen_credentials()
    session = boto3.Session(aws_access_key_id=credentials.access_key, aws_secret_access_key=credentials.secret_key,
                            aws_session_token=credentials.token, region_name=SECOND)
    function = cloud.stack(SECOND).function_name(SIGN_FUNCTION)
    client = SignClient(function, session.client("lambda", endpoint_url=cloud.aws_endpoint, config=ONE_ATTEMPT), session)
    assert client.sts_endpoint_url == cloud.sts_endpoint and client.region == SECOND
    answer = client.sign(REQUEST)
    assert "token" in answer, answer
    key = jwt.PyJWKClient(cloud.jwks_url, cache_jwk_set=False).get_signing_key_from_jwt(answer["token"])
    claims = jwt.decode(answer["token"], key, algorithms=[answer["alg"]], audience="demo", issuer=cloud.issuer)
    assert claims["sub"] == "alice"


def test_a_regions_signer_refuses_a_proof_scoped_to_another_region(cloud: LocalRegions) -> None:
    credentials = cloud.stack(SECOND).caller_session().get_credentials().get_frozen_credentials()
    function = cloud.stack(SECOND).function_name(SIGN_FUNCTION)
    proofs = {region: build_caller_proof(credentials, sts_endpoint_url=cloud.sts_endpoint, region=region, signer=function)
              for region in (PRIMARY, SECOND)}
    invoke = aws(cloud, "lambda", SECOND).invoke

    def answer(proof: dict[str, Any]) -> dict[str, Any]:
        return dict(json.loads(invoke(FunctionName=function, Payload=json.dumps({**REQUEST, "proof": proof}).encode())["Payload"].read()))

    assert answer(proofs[PRIMARY])["error"] == "unauthenticated"  # a us-east-1 proof at eu-west-1's signer
    assert "token" in answer(proofs[SECOND])  # the same caller's own-region proof passes


def test_an_outage_stops_that_regions_signer_at_once_and_the_other_keeps_signing(healthy: LocalRegions) -> None:
    cloud = healthy
    primary_sign = cloud.stack(PRIMARY).function_name(SIGN_FUNCTION)
    assert "token" in cloud.sign_client(PRIMARY).sign(REQUEST)
    started = fault(cloud, "region-outage", PRIMARY)
    assert started.exit_code == 0 and started.output == f"regions in outage: {PRIMARY}\n", started.output
    with pytest.raises(ClientError) as raised:
        aws(cloud, "lambda", PRIMARY).invoke(FunctionName=primary_sign, Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ServiceException"
    with pytest.raises(RegionOutageError):
        cloud.stack(PRIMARY).invoke(SIGN_FUNCTION, {})
    # The function itself, run past the Lambda API: its own reads (proof replay, key) fail in its region.
    direct = cloud.stack(PRIMARY).lambda_api.invoke(SIGN_FUNCTION, {**REQUEST, "proof": cloud.sign_client(PRIMARY).proof()[0]})
    assert direct.payload.get("error") == "signing_unavailable", direct.payload
    for _ in range(3):  # the other region signs through the same endpoints, again and again
        answer = cloud.sign_client(SECOND).sign(REQUEST)
        assert "token" in answer, answer
    assert fault(cloud, "clear", PRIMARY).output == "regions in outage: none\n"
    assert "token" in cloud.sign_client(PRIMARY).sign(REQUEST)


def test_the_edge_fails_over_to_the_second_regions_bucket_when_the_primarys_is_out(healthy: LocalRegions) -> None:
    cloud = healthy
    origins = cloud.edge.origins
    assert [(o.bucket, o.name) for o in origins] == [
        (cloud.stack(PRIMARY).resources_or_fail().bucket, PRIMARY), (cloud.stack(SECOND).resources_or_fail().bucket, SECOND)
    ]
    second_copy = json.loads(cloud.client("s3", SECOND).get_object(Bucket=origins[1].bucket, Key=JWKS_PATH)["Body"].read())
    failovers = cloud.edge.stats.failovers
    cloud.region_outage(PRIMARY)
    cloud.edge.purge()
    during = fetch_jwks(cloud)
    assert cloud.edge.stats.failovers == failovers + 1
    held_now = json.loads(cloud.client("s3", SECOND).get_object(Bucket=origins[1].bucket, Key=JWKS_PATH)["Body"].read())
    assert during in (second_copy, held_now)  # served from the second origin (which its region's writer may update)
    cloud.clear_outage(PRIMARY)
    cloud.edge.purge()
    fetch_jwks(cloud)
    assert cloud.edge.stats.failovers == failovers + 1  # the primary's bucket answers again: no failover


def test_a_replica_lags_behind_its_primary_by_the_lag_set_and_catches_up(healthy: LocalRegions) -> None:
    cloud = healthy
    name = f"lagged-{uuid.uuid4().hex[:8]}"
    primary = cloud.client("secretsmanager", PRIMARY)
    first = primary.create_secret(Name=name, SecretString="one", AddReplicaRegions=[{"Region": SECOND}])["VersionId"]
    readers = [cloud.client("secretsmanager", SECOND), aws(cloud, "secretsmanager", SECOND)]  # moto itself, and the AWS endpoint
    assert [r.get_secret_value(SecretId=name)["SecretString"] for r in readers] == ["one", "one"]
    lagged = fault(cloud, "replica-lag", SECOND, "30")
    assert lagged.exit_code == 0 and lagged.output == f"regions in outage: none\nreplica lag: {SECOND} 30s\n", lagged.output
    second = primary.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    assert primary.get_secret_value(SecretId=name)["SecretString"] == "two"
    for reader in readers:  # the replica shows the primary as it was 30 s ago, by every read
        assert reader.get_secret_value(SecretId=name)["SecretString"] == "one"
        assert reader.describe_secret(SecretId=name)["VersionIdsToStages"] == {first: ["AWSCURRENT"]}
        with pytest.raises(ClientError) as raised:
            reader.get_secret_value(SecretId=name, VersionId=second)
        assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert fault(cloud, "list").output == f"regions in outage: none\nreplica lag: {SECOND} 30s\n"
    assert fault(cloud, "replica-lag", SECOND, "0").output == "regions in outage: none\nreplica lag: none\n"
    assert [r.get_secret_value(SecretId=name)["SecretString"] for r in readers] == ["two", "two"]  # caught up at once
    cloud.set_replica_lag(SECOND, 1)  # from now on a write reaches the replica a second after it is made
    assert readers[0].get_secret_value(SecretId=name)["SecretString"] == "two"  # never back to what it showed before
    before = time.monotonic()
    primary.put_secret_value(SecretId=name, SecretString="three")
    after = time.monotonic()
    shown = readers[0].get_secret_value(SecretId=name)["SecretString"]
    assert shown == "two" or time.monotonic() - before >= 1  # a loaded machine may take a second to read back
    while time.monotonic() - after < 1.2:
        time.sleep(0.1)
    assert readers[0].get_secret_value(SecretId=name)["SecretString"] == "three"  # the lag passed: the write reached it


def test_a_lagging_keyring_replica_holds_the_writer_back_and_its_region_keeps_signing(healthy: LocalRegions) -> None:
    cloud = healthy
    primary = cloud.stack(PRIMARY)
    primary.stop_schedule()  # this test's ticks only
    try:
        cloud.set_replica_lag(SECOND, 60)
        deadline = time.monotonic() + 30
        summary = primary.tick()
        while summary.get("lagging_replicas") != [SECOND]:  # the next key waits for eu-west-1's replica to hold it
            assert time.monotonic() < deadline, summary
            time.sleep(0.5)
            summary = primary.tick()
        assert cloud.can_sign(SECOND) == ""  # with the key its replica holds, which the one JWKS still serves
        cloud.set_replica_lag(SECOND, 0)
        assert "lagging_replicas" not in primary.tick()  # caught up: read back at once
    finally:
        primary.begin_schedule()


def test_local_regions_refuses_bad_regions_and_settings_it_sets_itself() -> None:
    from jwks_rotator.core.errors import ConfigurationError

    for regions in ("us-east-1,us-east-1", "US,eu-west-1", ""):
        with pytest.raises(ConfigurationError):
            LocalRegions(regions)
    with pytest.raises(ConfigurationError, match="primary-region"):
        LocalRegions([PRIMARY, SECOND], {"primary-region": SECOND})
    result = CliRunner().invoke(cli, ["local", "--regions", "us-east-1,nowhere"])
    assert result.exit_code == 2 and "--regions" in result.output, result.output


# Last in this module: it promotes eu-west-1 for good (the module's stacks end here).
def test_with_the_primary_out_an_operator_promotes_eu_west_1_which_then_writes_both_origins_and_the_old_primary_is_fenced(
    healthy: LocalRegions,
) -> None:
    cloud = healthy
    state = cloud.state_file  # type: ignore[attr-defined]
    buckets = {region: cloud.stack(region).resources_or_fail().bucket for region in cloud.regions}
    assert cloud.stack(SECOND).function_environment("RotateFunction")["SECOND_ORIGIN_BUCKET"] == buckets[PRIMARY]  # its other origin

    def cli_in(region: str, *args: str) -> Any:
        return CliRunner().invoke(cli, ["--state-file", str(state), "--endpoint-url", cloud.aws_endpoint, "--region", region,
                                        "--stack", cloud.stack_name, *args])

    def documents(region: str) -> tuple[dict[str, Any], dict[str, str]]:
        s3 = cloud.client("s3", region)
        body = json.loads(s3.get_object(Bucket=buckets[region], Key=JWKS_PATH)["Body"].read())
        return body, dict(s3.head_object(Bucket=buckets[region], Key=JWKS_PATH)["Metadata"])

    def keyring() -> Keyring:
        arn = cloud.stack(SECOND).function_environment("RotateFunction")["KEYRING_SECRET_ID"]
        return Keyring.from_json(
            cloud.client("secretsmanager", SECOND).get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])

    old_primary_jwks = documents(PRIMARY)
    cloud.region_outage(PRIMARY)
    promoted = cli_in(SECOND, "promote", SECOND, "--yes")
    assert promoted.exit_code == 0, promoted.output
    assert f"old primary {PRIMARY}: no step-down" in promoted.output  # its rotate function does not answer
    assert f"promoted {SECOND}: the writer now, in place of {PRIMARY} (unreachable)" in promoted.output
    rotated = cli_in(SECOND, "rotate", "--now")
    assert rotated.exit_code == 0, rotated.output
    during = keyring()
    (fresh,) = [key for key in during.keys if key.lead_waived and key.state is KeyState.PENDING]  # rotate-now's
    # Published at eu-west-1's bucket only (us-east-1's is out): not every origin, so the fresh key waits; a key published
    # at both origins before the outage signs meanwhile.
    assert during.primary_region == SECOND and during.active is not None and during.active.published_at is not None
    assert fresh.published_at is None and during.active.kid != fresh.kid
    jwks, metadata = documents(SECOND)  # the origin it reaches: its own bucket, marked as its writing
    assert fresh.kid in {key["kid"] for key in jwks["keys"]} and metadata["writer-region"] == SECOND
    assert cloud.can_sign(SECOND) == ""  # verified by the JWKS the edge serves (from eu-west-1's bucket)

    cloud.clear_outage(PRIMARY)
    token = cloud.sign_client(PRIMARY).sign(REQUEST)["token"]  # the old primary signs with the key its view holds,
    assert token_against_jwks(token, jwks) == ""  # which the new writer's documents still publish
    with pytest.raises(LocalStackError, match="WriterSupersededError"):
        cloud.stack(PRIMARY).tick()  # it reads eu-west-1's keyring and documents: a newer writer, so it writes nothing
    refused = cli_in(PRIMARY, "rotate", "--now")
    assert refused.exit_code == 1 and "writer_superseded" in refused.output, refused.output
    assert documents(PRIMARY) == old_primary_jwks

    # The new writer's first tick after the return repairs the old primary's bucket; the fresh key activates only then.
    invalidations = cloud.edge.stats.invalidations_seen
    repaired = cli_in(SECOND, "rotate")
    assert repaired.exit_code == 0, repaired.output
    after = keyring()
    assert after.active is not None and after.active.kid == fresh.kid
    (primary_jwks, primary_marks), (second_jwks, _) = documents(PRIMARY), documents(SECOND)
    assert primary_jwks == second_jwks and primary_marks["writer-region"] == SECOND  # the same JWKS at both origins
    cloud.edge.check_invalidations()
    assert cloud.edge.stats.invalidations_seen > invalidations  # eu-west-1 invalidated the primary's distribution
    cloud.edge.purge()  # what the edge serves next comes from an origin, the primary's first
    failovers = cloud.edge.stats.failovers
    deadline = time.monotonic() + 10  # the signer's cached view (signer-cache-ttl) may still name the previous key
    answer = cloud.sign_client(SECOND).sign(REQUEST)
    while jwt.get_unverified_header(answer["token"])["kid"] != fresh.kid:
        assert time.monotonic() < deadline, answer
        time.sleep(0.25)
        answer = cloud.sign_client(SECOND).sign(REQUEST)
    assert token_against_jwks(answer["token"], fetch_jwks(cloud)) == ""  # through the edge, from the primary origin
    assert cloud.edge.stats.failovers == failovers
