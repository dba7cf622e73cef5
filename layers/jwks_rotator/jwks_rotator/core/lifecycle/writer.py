"""Which region's rotate function is the one writer, and the fence that stops a writer another region superseded.

Two facts decide it. The stack's ``primary-region`` setting names the writer as deployed; a rotate function cannot
change its own stack, so ``promote`` records the new writer in the keyring itself (``primary_region``, written with a
generation above every one seen). :func:`is_writer` combines them: the keyring's marker, when present, outranks the
setting. A returning old primary still reads its own keyring (the promote could not reach it), so it is stopped by
:func:`check_not_superseded`: before any write it reads what the other regions' keyring secrets and the origins'
documents say about their writer (:class:`~jwks_rotator.core.ports.WriterMark`), and one of a newer generation
written by another region means this one writes nothing.

Design: docs/design/regions.md ("Failures").
"""

from __future__ import annotations

from collections.abc import Mapping

from jwks_rotator.core.errors import WriterSupersededError
from jwks_rotator.core.ports import WriterMark, WriterMarks


def is_writer(own_region: str, settings_primary: str, keyring_marker: str | None) -> bool:
    """Whether the rotate function in ``own_region`` may write.

    ``keyring_marker`` (the keyring's ``primary_region``, set only by promote and step-down) decides when present:
    promote moves the writer without a stack update. Otherwise ``settings_primary`` (the stack's primary-region)
    does; empty means one region, whose rotate function always writes. The not-primary fence and the promote both
    ask this one function, so they cannot disagree.
    """
    if keyring_marker:
        return own_region == keyring_marker
    return not settings_primary or own_region == settings_primary


def check_not_superseded(own_region: str, generation: int, keyring_marker: str | None, marks: Mapping[str, WriterMark | None]) -> None:
    """Raise :class:`WriterSupersededError` when this writer was replaced; never writes, never reads.

    Replaced means: its own keyring names another region (it stepped down, or was a replica promoted elsewhere), or
    any mark (another region's keyring secret, an origin's documents; None: could not be read) of a generation
    above ``generation`` names a writer region other than ``own_region``.
    """
    if keyring_marker and own_region and keyring_marker != own_region:
        raise WriterSupersededError(
            f"this keyring names {keyring_marker} as the writer: {own_region or 'this region'} stepped down and writes nothing; "
            "update this stack's PrimaryRegion"
        )
    for where, mark in sorted(marks.items()):
        if mark is not None and mark.region and mark.region != own_region and mark.generation > generation:
            raise WriterSupersededError(
                f"{where} holds keyring generation {mark.generation} written by {mark.region}, newer than this keyring's "
                f"{generation}: {mark.region} was promoted, so {own_region or 'this region'} writes nothing; update this stack's PrimaryRegion"
            )


class MergedMarks:
    """Several :class:`~jwks_rotator.core.ports.WriterMarks` read as one (keyring secrets and origins, say)."""

    def __init__(self, *sources: WriterMarks) -> None:
        self._sources = sources

    def marks(self) -> Mapping[str, WriterMark | None]:
        merged: dict[str, WriterMark | None] = {}
        for source in self._sources:
            merged.update(source.marks())
        return merged
