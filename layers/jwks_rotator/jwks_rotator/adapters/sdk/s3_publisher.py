"""Publishing the public documents to S3 and invalidating CloudFront when they change."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.core.errors import PublicationSupersededError, PublishError
from jwks_rotator.core.lifecycle.documents import PublicDocuments
from jwks_rotator.core.ports import PublishResult
from jwks_rotator.core.settings import Settings

CONTENT_TYPE = "application/json"
DIGEST_METADATA = "sha256"
GENERATION_METADATA = "keyring-generation"
WRITER_METADATA = "writer-region"
"""The region of the rotate function that wrote the object (several regions): what a returning old primary's fence reads."""


class S3Publisher:
    """Writes documents to a bucket with Content-Type and Cache-Control; invalidates a distribution."""

    def __init__(
        self, s3_client: Any, bucket: str, settings: Settings, cloudfront_client: Any = None, distribution_id: str = "", *,
        writer_region: str = "",
    ) -> None:
        self._s3 = s3_client
        self._writer = {WRITER_METADATA: writer_region} if writer_region else {}
        self._cloudfront = cloudfront_client
        self._bucket = bucket
        self._distribution_id = distribution_id
        self._cache_control = f"public, max-age={int(settings.jwks_max_age.total_seconds())}"

    @property
    def cache_control(self) -> str:
        return self._cache_control

    def stale_paths(self, documents: PublicDocuments, generation: int | None = None) -> tuple[str, ...]:
        """Paths whose stored object is missing or differs in body or headers.

        With ``generation``, any object written from a newer keyring raises
        :class:`PublicationSupersededError` instead, even one holding the same
        document: a slow rotator must not put an older key set back over a
        newer one, and a restored keyring whose documents equal the published
        ones may still have undone a bound recorded on a key.
        """
        return self._inspect(documents, generation)[0]

    def _inspect(
        self, documents: PublicDocuments, generation: int | None, *, written: int | None = None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(stale, behind)``: paths to upload, and paths holding the same document under another generation than
        ``written`` (the generation this publication writes; the bucket's marks follow the keyring's)."""
        stale: list[str] = []
        behind: list[str] = []
        for path, body in documents.files.items():
            try:
                head = self._s3.head_object(Bucket=self._bucket, Key=path)
            except AWS_ERRORS as exc:
                code = error_code(exc)
                if code in ("404", "NoSuchKey", "NotFound"):
                    stale.append(path)
                    continue
                raise PublishError(f"cannot read s3://{self._bucket}/{path}: {code}") from None
            stored_generation = head.get("Metadata", {}).get(GENERATION_METADATA, "")
            if generation is not None and stored_generation.isdigit() and int(stored_generation) > generation:
                raise PublicationSupersededError(
                    f"s3://{self._bucket}/{path} was published from keyring generation {stored_generation}, "
                    f"newer than {generation}"
                )
            if (
                head.get("Metadata", {}).get(DIGEST_METADATA) != hashlib.sha256(body).hexdigest()
                or head.get("ContentType") != CONTENT_TYPE
                or head.get("CacheControl") != self._cache_control
            ):
                stale.append(path)
            elif written is not None and stored_generation != str(written):
                behind.append(path)
        return tuple(stale), tuple(behind)

    def upload(self, documents: PublicDocuments, paths: tuple[str, ...], generation: int = 0) -> None:
        """Write the given paths (the JWKS first, so discovery never points at an older set)."""
        for path in sorted(paths, key=lambda p: (not p.endswith("jwks.json"), p)):
            body = documents.files[path]
            try:
                self._s3.put_object(
                    Bucket=self._bucket,
                    Key=path,
                    Body=body,
                    ContentType=CONTENT_TYPE,
                    CacheControl=self._cache_control,
                    Metadata={DIGEST_METADATA: hashlib.sha256(body).hexdigest(), GENERATION_METADATA: str(generation), **self._writer},
                )
            except AWS_ERRORS as exc:
                raise PublishError(f"cannot write s3://{self._bucket}/{path}: {error_code(exc)}") from None

    def invalidate(self, paths: tuple[str, ...]) -> str | None:
        """One CloudFront invalidation for the paths; None when no distribution is configured."""
        if not self._distribution_id or self._cloudfront is None or not paths:
            return None
        items = sorted("/" + p for p in paths)
        try:
            response = self._cloudfront.create_invalidation(
                DistributionId=self._distribution_id,
                InvalidationBatch={"Paths": {"Quantity": len(items), "Items": items}, "CallerReference": str(uuid.uuid4())},
            )
        except AWS_ERRORS as exc:
            raise PublishError(f"cannot invalidate distribution {self._distribution_id}: {error_code(exc)}") from None
        return str(response["Invalidation"]["Id"])

    def publish(self, documents: PublicDocuments, *, already_announced: bool, generation: int, force: bool = False) -> PublishResult:
        """Upload what is stale and invalidate it.

        ``already_announced`` says the keyring recorded this digest as
        published and invalidated; if it did not (an earlier tick uploaded but
        failed to invalidate), every path is invalidated again. ``generation``
        is the keyring's; documents from a newer one are not overwritten
        unless ``force`` says the store holds nothing newer. Unchanged
        documents stored under another generation are written again with this
        one (``refreshed``, not invalidated: their bytes are the same), so the
        bucket marks the newest keyring and a restore to any older version of
        it is detected.
        """
        stale, behind = self._inspect(documents, None if force else generation, written=generation)
        if stale or behind:
            self.upload(documents, stale + behind, generation)
        to_invalidate = stale if already_announced else tuple(documents.files)
        invalidation_id = self.invalidate(to_invalidate) if to_invalidate else None
        return PublishResult(uploaded=stale, invalidation_id=invalidation_id, refreshed=behind)
