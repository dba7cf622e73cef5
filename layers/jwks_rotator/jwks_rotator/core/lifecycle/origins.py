"""Publishing one issuer's documents to every origin: a publication counts only when every origin holds them.

An edge that fails over between origins (a CloudFront origin group over buckets in two regions) may serve a
verifier from any of them, so a key counts as published only once every origin serves it. :class:`EveryOrigin`
is a :class:`~jwks_rotator.core.ports.Publisher` over several origins:

* it reads every origin before writing any: the writer's own origin (``own``) holding documents of a newer keyring
  stops the publication everywhere (the writer is fenced by the keyring generation, as with one bucket);
* another origin holding documents of a newer keyring is not written and is named in ``missing`` and ``ahead``: it
  never fences the writer (anyone who may write that bucket could mark it, or it may be another deployment's), so
  signing goes on everywhere; nothing is recorded as published until an accepted restore (``force``) overwrites it;
* it writes every origin it can reach, in the order given (put the one that invalidates the edge's cache last),
  and reads each back: the stored digests must be the documents';
* an origin that cannot be read or written does not stop the others (the healthy ones stay current), and the
  rest of the rotation goes on (a revocation included); the result names it in ``missing``, so the rotation
  records nothing as published and no key activates; the next publication writes the missing origin again.
  When no origin takes the documents, :class:`~jwks_rotator.core.errors.PublishError` is raised, as with one.

Design: docs/design/regions.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jwks_rotator.core.errors import ConfigurationError, PublicationSupersededError, PublishError
from jwks_rotator.core.ports import OriginPublisher, PublishResult

if TYPE_CHECKING:
    from jwks_rotator.core.lifecycle.documents import PublicDocuments


@dataclass(frozen=True)
class Origin:
    """One origin of the documents: a name for messages (its region or bucket) and its publisher."""

    name: str
    publisher: OriginPublisher


class EveryOrigin:
    """A publisher whose publication counts only when every origin holds the documents (see the module)."""

    def __init__(self, origins: Sequence[Origin], *, own: str | None = None) -> None:
        """``own`` names the writer's own origin (its stack's bucket); default the last (written last: it invalidates the edge)."""
        if not origins:
            raise ConfigurationError("publication needs at least one origin")
        names = [origin.name for origin in origins]
        if len(set(names)) != len(names) or not all(names):
            raise ConfigurationError("each origin needs a name of its own")
        self._own = names[-1] if own is None else own
        if self._own not in names:
            raise ConfigurationError("the writer's own origin must be one of the origins")
        self._origins = tuple(origins)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(origin.name for origin in self._origins)

    def publish(self, documents: PublicDocuments, *, already_announced: bool, generation: int, force: bool = False) -> PublishResult:
        """Write every reachable origin; the merged result, whose ``missing`` names the origins that did not take it.

        ``force`` (an accepted restore) skips the generation check, as a single publisher does.
        """
        missing: dict[str, str] = {}
        ahead: list[str] = []
        if not force:
            for origin in self._origins:  # the fence first: nothing is written while the own origin is ahead
                try:
                    origin.publisher.stale_paths(documents, generation)
                except PublicationSupersededError as exc:
                    if origin.name == self._own:
                        raise
                    missing[origin.name] = exc.message
                    ahead.append(origin.name)
                except PublishError as exc:
                    missing[origin.name] = exc.message
        results: list[PublishResult] = []
        written: list[Origin] = []
        for origin in self._origins:
            if origin.name in missing:
                continue
            try:
                results.append(origin.publisher.publish(documents, already_announced=already_announced, generation=generation, force=force))
            except PublicationSupersededError as exc:
                if origin.name == self._own:
                    raise  # a newer writer got in after the check
                missing[origin.name] = exc.message
                ahead.append(origin.name)
                continue
            except PublishError as exc:
                missing[origin.name] = exc.message
                continue
            written.append(origin)
        for origin in written:  # read back: the stored digests must be these documents'
            try:
                # With the generation: a newer run's documents written since (a racing tick or rotate-now) supersede
                # this publication rather than fail the origin.
                left = origin.publisher.stale_paths(documents, None if force else generation)
            except PublicationSupersededError as exc:
                if origin.name == self._own:
                    raise  # the round reads the newer keyring and plans again
                missing[origin.name] = exc.message  # not counted ahead: it was not at the fence, so a racing run's
                continue  # (the next run's fence tells a stray writer apart)
            except PublishError as exc:
                missing[origin.name] = exc.message
                continue
            if left:
                missing[origin.name] = f"{len(left)} document(s) differ from what was written"
        names = tuple(name for name in self.names if name in missing)
        if len(names) == len(self._origins):
            detail = "; ".join(f"{name}: {missing[name]}" for name in names)
            raise PublishError(f"published at none of {len(names)} origins: {detail}")
        return _merged(results, names, tuple(name for name in self.names if name in ahead))


def _merged(results: Sequence[PublishResult], missing: tuple[str, ...], ahead: tuple[str, ...]) -> PublishResult:
    """One result for the whole publication: every path uploaded or refreshed anywhere, the edge's invalidation."""
    uploaded = tuple(dict.fromkeys(path for result in results for path in result.uploaded))
    refreshed = tuple(dict.fromkeys(path for result in results for path in result.refreshed if path not in uploaded))
    invalidation = next((result.invalidation_id for result in results if result.invalidation_id is not None), None)
    return PublishResult(uploaded=uploaded, invalidation_id=invalidation, refreshed=refreshed, missing=missing, ahead=ahead)
