from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator_testkit.deploy import AwsResources


def test_fixture_creates_an_empty_keyring_secret(aws_resources: AwsResources) -> None:
    sm = aws_resources.client("secretsmanager")
    value = sm.get_secret_value(SecretId=aws_resources.secret_id)
    assert Keyring.from_json(value["SecretString"]).keys == ()
    assert aws_resources.client("cloudfront").get_distribution(Id=aws_resources.distribution_id)["Distribution"]["Id"]
