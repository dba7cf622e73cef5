"""docs/compatibility.md is what tests/interop/compat.py renders, and the recorded-results check catches every gap."""

from __future__ import annotations

import json
from pathlib import Path

from . import compat
from .support import ALGORITHMS


def test_the_committed_page_matches_the_expectations_the_tests_assert() -> None:
    assert compat.PAGE.read_text(encoding="utf-8") == compat.render(), "run `make compatibility` (or python -m tests.interop.compat --write docs/compatibility.md)"


def test_every_verifier_and_algorithm_has_a_row() -> None:
    page = compat.render()
    for verifier in compat.VERIFIERS:
        section = page.split(f"## {verifier}\n", 1)[1].split("\n## ", 1)[0]
        assert [line.split(" | ")[0].strip("| ") for line in section.splitlines() if line.startswith("| ") and "Algorithm" not in line] == list(ALGORITHMS)


def _record_everything(directory: Path) -> None:
    for verifier in compat.VERIFIERS:
        for alg in ALGORITHMS:
            for behaviour, checks in compat.BEHAVIOURS.items():
                for check in checks:
                    compat.record(verifier, alg, check, compat.expected(verifier, alg, behaviour), directory=directory)


def test_the_check_names_missing_and_unexpected_results(tmp_path: Path) -> None:
    assert len(compat.differences(tmp_path)) == len(compat.VERIFIERS) * len(ALGORITHMS) * len(compat.BEHAVIOURS)
    _record_everything(tmp_path)
    assert compat.differences(tmp_path) == []
    compat.record("Envoy", "ES256", "rotate_now", compat.AFTER_REFETCH, directory=tmp_path)  # not what Envoy does
    (tmp_path / "jose-PS256-hs256_public_jwk_json.json").unlink()  # one of a behaviour's two checks missing
    assert sorted(compat.differences(tmp_path)) == [
        "Envoy ES256 rotate-now: expected 'accepted after cache', recorded ['accepted after refetch']",
        "jose PS256 HS256 with the public key: expected 'refused', recorded ['missing', 'refused']",
    ]
    assert compat.main(["--check", "--results", str(tmp_path), "--write", str(tmp_path / "page.md")]) == 1


def test_the_versions_on_the_page_are_the_pinned_ones() -> None:
    pins = dict(line.split("==", 1) for line in (compat.ROOT / "requirements" / "dev.txt").read_text().split() if "==" in line)
    pins = {name.split("[")[0]: version for name, version in pins.items()}
    pins.update(json.loads((compat.ROOT / "tests" / "interop" / "node" / "package.json").read_text())["dependencies"])
    for package, version in compat.VERSIONS.values():
        assert pins[package] == version, package
