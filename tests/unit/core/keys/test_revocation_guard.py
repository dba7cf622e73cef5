"""The revocation record is the authority; its SSM mirror is checked, repaired and never blocks a revocation."""

from __future__ import annotations

import json

import pytest

from jwks_rotator.core.errors import StoreError
from jwks_rotator.core.keys.revocation import MALFORMED_LIST
from jwks_rotator.core.keys.revocation_guard import (
    MIRROR_MAX_BYTES,
    GuardedRevocationList,
    InheritingRevocationRecord,
    RecordRevocationReader,
    UnionRevocationReader,
    decode_record,
    encode_record,
    mirror_of,
)


class Record:
    def __init__(self, kids: tuple[str, ...] | None = None) -> None:
        self.kids = kids
        self.saves = 0

    def load(self) -> tuple[str, ...] | None:
        return self.kids

    def save(self, kids: tuple[str, ...]) -> None:
        self.kids = kids
        self.saves += 1


class Mirror:
    """An SSM parameter any SSM writer can change: ``value`` None is erased, a str is a malformed value."""

    def __init__(self, value: tuple[str, ...] | str | None = ()) -> None:
        self.value = value
        self.writable = True

    def read_mirror(self) -> tuple[str, ...]:
        if self.value is None:
            raise StoreError("missing", reason="ParameterNotFound")
        if isinstance(self.value, str):
            raise StoreError("malformed", reason=MALFORMED_LIST)
        return self.value

    def replace(self, kids: tuple[str, ...]) -> None:
        if not self.writable:
            raise StoreError("throttled", reason="ThrottlingException")
        self.value = kids


def guarded(record: Record, mirror: Mirror) -> tuple[GuardedRevocationList, list[str]]:
    repairs: list[str] = []
    return GuardedRevocationList(record, mirror, on_repair=repairs.append), repairs


@pytest.mark.parametrize(
    ("tampered", "reason"),
    [(None, "erased"), ((), "erased"), (("kid-a",), "erased"), ('{"not": "a list"}', "malformed"), (("kid-a", "kid-b", "junk-1"), "junk")],
)
def test_a_tampered_mirror_is_rewritten_from_the_record_and_reported(tampered: tuple[str, ...] | str | None, reason: str) -> None:
    record, mirror = Record(("kid-a", "kid-b")), Mirror(tampered)
    subject, repairs = guarded(record, mirror)
    assert subject.load() == {"kid-a", "kid-b"}
    assert mirror.value == ("kid-a", "kid-b") and repairs == [reason]
    assert subject.load() == {"kid-a", "kid-b"} and repairs == [reason]  # healed: the next read finds nothing to repair


def test_a_mirror_full_of_well_formed_junk_never_blocks_a_revocation() -> None:
    junk = tuple(f"junk-{index:038d}" for index in range(89))  # about 4,096 bytes of kids the stack never revoked
    assert len(json.dumps(list(junk), separators=(",", ":"))) <= MIRROR_MAX_BYTES
    record, mirror = Record(("kid-a",)), Mirror(junk)
    subject, repairs = guarded(record, mirror)
    subject.add("compromised")
    assert record.kids == ("kid-a", "compromised") and mirror.value == ("kid-a", "compromised")
    assert subject.load() == {"kid-a", "compromised"} and repairs == []


def test_more_revocations_than_the_mirror_holds_are_all_kept_in_the_record() -> None:
    record, mirror = Record(()), Mirror(())
    subject, _ = guarded(record, mirror)
    kids = [f"kid-{index:040d}" for index in range(200)]
    for kid in kids:
        subject.add(kid)
    assert record.kids == tuple(kids)
    assert isinstance(mirror.value, tuple) and mirror.value == tuple(kids[-len(mirror.value) :])  # the newest that fit
    assert len(json.dumps(list(mirror.value), separators=(",", ":"))) <= MIRROR_MAX_BYTES < len(json.dumps(kids))


def test_an_unwritable_mirror_does_not_refuse_the_revocation_and_is_reported() -> None:
    record, mirror = Record(()), Mirror(())
    mirror.writable = False
    subject, repairs = guarded(record, mirror)
    subject.add("compromised")
    assert record.kids == ("compromised",) and repairs == ["mirror_unwritable"]


def test_a_record_never_written_adopts_the_mirror_once() -> None:
    record, mirror = Record(None), Mirror(("kid-old",))
    subject, repairs = guarded(record, mirror)
    assert subject.load() == {"kid-old"} and record.kids == ("kid-old",) and repairs == []
    mirror.value = ("kid-old", "junk")
    assert subject.load() == {"kid-old"} and repairs == ["junk"]  # adopted once: later additions are junk


def test_a_failure_to_read_the_mirror_other_than_tampering_fails_the_run() -> None:
    class Down(Mirror):
        def read_mirror(self) -> tuple[str, ...]:
            raise StoreError("down", reason="ThrottlingException")

    subject, _ = guarded(Record(()), Down())
    with pytest.raises(StoreError):
        subject.load()


def test_the_signer_refuses_a_kid_on_either_the_record_or_the_mirror() -> None:
    class Reader:
        def __init__(self, kids: frozenset[str]) -> None:
            self.kids = kids

        def read(self) -> frozenset[str]:
            return self.kids

    union = UnionRevocationReader(RecordRevocationReader(Record(("kid-a",))), Reader(frozenset()))
    assert union.read() == {"kid-a"}
    assert RecordRevocationReader(Record(None)).read() == frozenset()


def test_the_record_round_trips_and_refuses_anything_else() -> None:
    assert decode_record(encode_record(["a", "b"])) == ("a", "b")
    for bad in (b"[]", b'{"revoked": [1]}', b"not json", b'{"revoked": [""]}'):
        with pytest.raises(StoreError):
            decode_record(bad)
    assert mirror_of(["a", "b"], 8) == ("b",)


def test_another_regions_mirror_never_becomes_the_record_and_is_guarded_by_the_primarys() -> None:
    record, mirror = Record(None), Mirror(("junk-from-that-regions-ssm-writer",))
    secondary = GuardedRevocationList(record, mirror, adopt=False)
    with pytest.raises(StoreError) as missing:
        secondary.load()
    assert missing.value.reason == "record_missing" and record.kids is None and mirror.value == ("junk-from-that-regions-ssm-writer",)
    record.kids = ("kid-a",)  # the primary's guard wrote the record
    repairs: list[str] = []
    secondary = GuardedRevocationList(record, mirror, on_repair=repairs.append, adopt=False)
    assert secondary.load() == {"kid-a"} and mirror.value == ("kid-a",) and repairs == ["junk"]


class Unreadable:
    def load(self) -> tuple[str, ...] | None:
        raise StoreError("cannot read the revocation record: ServiceUnavailable", reason="ServiceUnavailable")

    def save(self, kids: tuple[str, ...]) -> None:
        raise AssertionError("an inherited record is never written")


def test_a_kid_in_the_old_writer_s_record_joins_the_own_record_for_ever() -> None:
    own, old = Record(("k1",)), Record(("k1", "k2"))
    record = InheritingRevocationRecord(own, {"us-east-1": old})
    assert record.load() == ("k1", "k2") and own.kids == ("k1", "k2") and own.saves == 1
    old.kids = ()  # the old writer's record emptied (or restored): the kid stays revoked
    assert record.load() == ("k1", "k2") and own.saves == 1
    record.save(("k1", "k2", "k3"))
    assert own.kids == ("k1", "k2", "k3") and old.kids == ()


def test_an_inherited_record_that_cannot_be_read_is_skipped_and_another_region_s_ssm_list_never_revokes() -> None:
    own = Record(None)
    record = InheritingRevocationRecord(own, {"us-east-1": Unreadable()})
    assert record.load() is None and own.saves == 0  # an outage of the old writer's region must not stop the writer
    mirror = Mirror(("k9",))  # an SSM writer's kid, in another region's list guarded by the writer's record
    own.kids = ()
    guarded = GuardedRevocationList(record, mirror, adopt=False)
    assert guarded.load() == frozenset() and mirror.value == ()  # junk: neither revoked nor kept


def test_the_old_writer_s_list_keeps_what_its_record_revoked() -> None:
    own, old = Record(("k1",)), Record(("k1", "k2"))
    mirror = Mirror(("k1", "k2"))  # the old primary's SSM list: k2 revoked there during a partition
    guarded = GuardedRevocationList(InheritingRevocationRecord(own, {"us-east-1": old}), mirror, adopt=False)
    assert guarded.load() == frozenset({"k1", "k2"}) and mirror.value == ("k1", "k2")
