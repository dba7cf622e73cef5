"""A simulated stack in KMS custody: the real rotation service and signer over an in-memory store and bucket and
the eventually consistent KMS test double (:mod:`tests.kms_doubles`), on one fake clock."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.core.issuance.signer import TokenSigner
from jwks_rotator.core.keys.revocation import MemoryRevocationList
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.lifecycle.kms_custody import KmsCustodian
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.ports import StoredKeyring
from jwks_rotator.core.settings import Settings
from tests.kms_doubles import ROTATE_ROLE, SIGN_ROLE, EventuallyConsistentKms
from tests.simulation import START, FakeClock, FakeCloudFront, FakeS3, Faults, InMemoryKeyringStore, key_pool

ISSUER = "https://issuer.example.com"


def kms_settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        "issuer": ISSUER, "keyring_secret_id": "keyring", "algorithm": "ES256", "key_custody": "kms", "kms_stack_tag": "stack",
        "kms_sign_role_arn": SIGN_ROLE, "kms_rotate_role_arn": ROTATE_ROLE,
        "rotation_period": "3d", "publish_lead": "1d", "schedule": "15m", "key_deletion_window": "7d",
    }
    values.update(changes)
    return Settings.from_mapping(values)


class StoreReader:
    """The signer's read of the in-memory store's current version; counts reads."""

    def __init__(self, store: InMemoryKeyringStore) -> None:
        self.store = store
        self.reads = 0

    def read_current(self) -> StoredKeyring:
        self.reads += 1
        return StoredKeyring(self.store.current, self.store.versions[self.store.current])


@dataclass
class KmsWorld:
    settings: Settings
    delay: float = 0.0  # the longest propagation delay of an Enable/Disable/PutKeyPolicy
    seed: int = 0
    clock: FakeClock = field(default_factory=lambda: FakeClock(START))
    store: InMemoryKeyringStore = field(default_factory=InMemoryKeyringStore)
    revocations: MemoryRevocationList = field(default_factory=MemoryRevocationList)

    def __post_init__(self) -> None:
        faults = Faults(random.Random(0), {})
        self.s3, self.cloudfront = FakeS3(faults), FakeCloudFront(faults)
        rng = random.Random(self.seed)
        self.vault = EventuallyConsistentKms(self.clock.now, delay=lambda: rng.uniform(0, self.delay))
        self.reader = StoreReader(self.store)
        self.custodian = KmsCustodian(self.vault, self.settings, self.clock.advance, propagation=max(self.delay, 0.001))
        self.service = self.rotator()

    def rotator(self) -> RotationService:
        publisher = S3Publisher(self.s3, "bucket", self.settings, cloudfront_client=self.cloudfront, distribution_id="D")
        self.custodian.settings = self.settings
        return RotationService(self.store, publisher, self.settings, clock=self.clock.now, key_factory=key_pool(),
                               revocations=self.revocations, custodian=self.custodian)

    def reconfigure(self, **changes: Any) -> None:
        self.settings = self.settings.replace(**changes)
        self.service = self.rotator()

    def signer(self) -> TokenSigner:
        return TokenSigner(self.settings, self.reader, clock=self.clock.unix, monotonic=self.clock.monotonic,
                           revocations=None, vault=self.vault)

    def published_jwks(self) -> dict[str, Any]:
        return dict(json.loads(self.s3.objects[JWKS_PATH]["Body"]))

    def run_until_active(self, ticks: int = 200) -> None:
        for _ in range(ticks):
            self.service.tick()
            if self.store.load().keyring.active is not None:
                return
            self.clock.advance(self.settings.schedule)
        raise AssertionError("no key became active")

    def tick_for(self, span: timedelta) -> None:
        end = self.clock.now() + span
        while self.clock.now() < end:
            self.service.tick()
            self.clock.advance(self.settings.schedule)
