"""promote: every safety check refuses with its own code and changes nothing; a promote makes the replica the
keyring of record above every generation seen, publishes, and answers already_primary when run again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from jwks_rotator.core.errors import PromoteRefusedError, PublishError, WriterSupersededError
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.lifecycle.promote import Promotion
from jwks_rotator.core.ports import PrimaryAnswer, WriterMark
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from tests.simulation import START, InMemoryKeyringStore

A, B, C = "us-east-1", "eu-west-1", "ap-south-1"
BASE = {
    "issuer": "https://issuer.example.com", "algorithm": "ES256", "keyring_secret_id": "keyring", "signing_secret_id": "signing",
    "primary_region": A, "regions": f"{A},{B},{C}", "second_origin_bucket": "bucket-a", "second_origin_region": A,
}
SETTINGS = Settings.from_mapping(BASE)
DOWN = PrimaryAnswer(False, reason="ServiceUnavailable")


class Replica:
    def __init__(self, source: str | None) -> None:
        self.source = source
        self.stops = 0

    def replicated_from(self) -> str | None:
        return self.source

    def stop_replication(self) -> None:
        assert self.source is not None, "StopReplicationToReplica on a standalone secret"
        self.source = None
        self.stops += 1


class Origins:
    def __init__(self, **marks: WriterMark | None) -> None:
        self.held: dict[str, WriterMark | None] = dict(marks)

    def marks(self) -> Mapping[str, WriterMark | None]:
        return dict(self.held)


class Probe:
    def __init__(self, answer: PrimaryAnswer) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def probe(self, region: str) -> PrimaryAnswer:
        self.asked.append(region)
        return self.answer


class Target:
    """eu-west-1: its keyring replica (generation 40), signing view replica, two origins, the old primary's probe."""

    def __init__(self, *, answer: PrimaryAnswer = DOWN, origin_generation: int = 38,
                 settings: Settings = SETTINGS, region: str = B) -> None:
        self.clock = FakeClock(START)
        self.store = InMemoryKeyringStore()
        stored = self.store.load()
        keyring = stored.keyring.replace_keys([generate_key("ES256", START)])
        self.store.save(type(keyring)(keyring.keys, None, 40), stored.version_id)
        self.keyring_secret, self.signing_secret = Replica(A), Replica(A)
        self.origins = Origins(**{"s3://a": None, "s3://b": WriterMark(origin_generation, A)})
        self.probe = Probe(answer)
        self.writers = Origins(**{f"the keyring secret in {A}": WriterMark(40, ""), f"the keyring secret in {C}": WriterMark(40, "")})
        self.published: list[int] = []
        self.fail_publish = False
        self.promotion = Promotion(region, settings, self.store, self.keyring_secret, self.origins, self.probe, self.publish,
                                   signing_secret=self.signing_secret, writers=self.writers, clock=self.clock.now)

    def publish(self) -> Mapping[str, Any]:
        if self.fail_publish:
            raise PublishError("cannot write s3://b/jwks.json: SlowDown")
        self.published.append(self.store.load().keyring.generation)
        return {"active_kid": "k", "changes": [], "published": [["jwks.json"]]}

    def unchanged(self) -> bool:
        return (self.store.load().keyring.generation == 40 and self.keyring_secret.source == A and self.signing_secret.source == A
                and not self.published)


def refusal(target: Target, region: str = B) -> str:
    with pytest.raises(PromoteRefusedError) as refused:
        target.promotion.promote(region)
    assert target.unchanged()
    return refused.value.code


def test_promote_runs_only_in_the_target_region_s_own_function() -> None:
    assert refusal(Target(), A) == "promote_wrong_region"
    assert refusal(Target(region="")) == "promote_wrong_region"


def test_kms_custody_is_not_promoted() -> None:
    kms = Settings.from_mapping({**BASE, "key_custody": "kms", "kms_rotate_role_arn": "arn:aws:iam::123456789012:role/r"})
    assert refusal(Target(settings=kms)) == "promote_unsupported"


def test_a_stack_naming_no_second_origin_is_not_promoted() -> None:
    third = Settings.from_mapping({k: v for k, v in BASE.items() if not k.startswith("second_origin")})
    assert refusal(Target(settings=third)) == "promote_unsupported"  # a third region: nobody serves its bucket


def test_a_keyring_secret_naming_another_writer_refuses_the_promote() -> None:
    for marker in (C, B + "x"):
        target = Target()
        target.writers.held[f"the keyring secret in {C}"] = WriterMark(41, marker)  # C was promoted
        assert refusal(target) == "promote_other_writer"
    target = Target()
    target.writers.held[f"the keyring secret in {C}"] = None  # unreadable: no evidence either way
    target.writers.held[f"the keyring secret in {A}"] = WriterMark(41, B)  # the old primary stepped down towards B
    assert target.promotion.promote(B).region == B


def test_a_replica_behind_what_an_origin_serves_is_refused() -> None:
    target = Target(origin_generation=41)
    assert refusal(target) == "replica_behind_publication"
    assert target.probe.asked == []  # the first failing check answers


def test_no_readable_origin_is_refused() -> None:
    target = Target()
    target.origins.held = {"s3://a": None, "s3://b": None}
    assert refusal(target) == "origins_unreadable"


def test_an_old_primary_that_answers_and_still_writes_is_refused() -> None:
    for answer in (PrimaryAnswer(True, None, 40), PrimaryAnswer(True, A, 40), PrimaryAnswer(True, reason="AccessDeniedException")):
        target = Target(answer=answer)
        assert refusal(target) == "old_primary_not_stepped_down"
        assert target.probe.asked == [A]


def test_a_stepped_down_primary_ahead_of_the_replica_is_waited_for() -> None:
    assert refusal(Target(answer=PrimaryAnswer(True, B, 41))) == "replica_behind_primary"


def test_promote_with_the_primary_unreachable_then_again_is_a_no_op() -> None:
    target = Target()
    report = target.promotion.promote(B)
    keyring = target.store.load().keyring
    assert (report.old_primary, report.old_primary_state, report.already_primary) == (A, "unreachable", False)
    assert keyring.primary_region == B and keyring.generation == report.generation
    assert report.generation >= int(START.timestamp()) > 40  # above every generation a counting lineage reaches
    assert (report.replica_generation, report.origin_generation) == (40, 38)
    assert target.keyring_secret.stops == target.signing_secret.stops == 1
    assert target.published == [report.generation] and report.published and report.summary["active_kid"] == "k"
    again = target.promotion.promote(B)
    assert again.already_primary and again.old_primary_state == "already_primary" and again.generation == report.generation
    assert again.old_primary == A  # the stack as deployed still names it: the answer says which region to update
    assert target.published == [report.generation] and target.keyring_secret.stops == 1


def test_promote_after_a_step_down_and_a_generation_above_all_seen() -> None:
    target = Target(answer=PrimaryAnswer(True, B, 40))
    target.clock.move_to(10)  # a clock far behind: the generation still passes every one seen
    target.origins.held["s3://a"] = WriterMark(39, A)
    report = target.promotion.promote(B)
    assert report.old_primary_state == "stepped_down" and report.generation == 41


def test_a_failed_first_publication_leaves_the_promote_done() -> None:
    target = Target()
    target.fail_publish = True
    report = target.promotion.promote(B)
    assert not report.published and report.publish_error == "publish_failed"
    assert target.store.load().keyring.primary_region == B


def test_a_promote_interrupted_after_replication_stopped_finishes_when_run_again() -> None:
    target = Target()
    target.keyring_secret.source = None  # the first run stopped replication, then died before writing the keyring
    target.signing_secret.source = None
    report = target.promotion.promote(B)
    assert report.old_primary == A and not report.already_primary and target.store.load().keyring.primary_region == B


def test_a_check_changes_nothing_and_says_what_a_promote_would_do() -> None:
    answering = Target(answer=PrimaryAnswer(True, None, 40))  # the old primary answers and still writes: step it down
    checked = answering.promotion.promote(B, check=True)
    assert checked.checked and checked.old_primary_state == "answers" and checked.old_primary == A and answering.unchanged()
    assert answering.promotion.known["probe"]["reachable"] is True and answering.promotion.known["origin_generation"] == 38
    down = Target()
    checked = down.promotion.promote(B, check=True)
    assert checked.checked and checked.old_primary_state == "unreachable" and checked.generation > 40 and down.unchanged()
    assert refusal(Target(origin_generation=41)) == "replica_behind_publication"  # a check refuses as the promote does
    with pytest.raises(PromoteRefusedError) as refused:
        Target(origin_generation=41).promotion.promote(B, check=True)
    assert refused.value.code == "replica_behind_publication"


def test_replication_is_stopped_last_logged_and_reported() -> None:
    target = Target()
    report = target.promotion.promote(B)
    assert report.stopped_replication == ("signing view", "keyring")
    assert target.promotion.known["stopped_replication"] == ["signing view", "keyring"]


def test_an_interrupted_promote_overtaken_by_the_documents_is_refused_with_its_recovery() -> None:
    target = Target(origin_generation=45)
    target.keyring_secret.source = None  # stopped by a promote that died before the write; the old primary published since
    with pytest.raises(PromoteRefusedError) as refused:
        target.promotion.promote(B)
    assert refused.value.code == "promote_interrupted" and "ReplicateSecretToRegions" in refused.value.message
    assert target.store.load().keyring.primary_region is None
    ahead = Target(answer=PrimaryAnswer(True, B, 44))  # the old primary (reachable) wrote past the standalone copy
    ahead.keyring_secret.source = None
    with pytest.raises(PromoteRefusedError) as behind:
        ahead.promotion.promote(B)
    assert behind.value.code == "promote_interrupted"


def test_a_fenced_old_primary_is_not_answered_already_primary() -> None:
    old = Target(region=A)
    old.keyring_secret.source = old.signing_secret.source = None  # the primary's own secrets
    old.writers.held = {f"the keyring secret in {B}": WriterMark(1_000_000, B)}  # eu-west-1 was promoted
    with pytest.raises(WriterSupersededError):
        old.promotion.promote(A)
    old.writers.held = {f"the keyring secret in {B}": WriterMark(40, "")}
    assert old.promotion.promote(A).already_primary
