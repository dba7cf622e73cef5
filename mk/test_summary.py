"""One closing count over the JUnit reports of `make test`'s pytest sessions: "tests: N passed, N failed, N skipped".

Exits 1 when a test failed or errored, or when the reports hold fewer tests than MIN_TESTS (a session that
collected nothing, or a tier directory lost, must not pass as green).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

MIN_TESTS = 1414
"""The count `make test` ran before it ran in parallel; it may grow, never shrink."""


def main(paths: list[str]) -> int:
    total = failed = skipped = 0
    for path in paths:
        root = ET.parse(path).getroot()
        for suite in root.iter("testsuite"):
            total += int(suite.get("tests", 0))
            failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped += int(suite.get("skipped", 0))
    passed = total - failed - skipped
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    if total < MIN_TESTS:
        print(f"make test: {total} tests in {len(paths)} report(s), fewer than {MIN_TESTS}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main([p for p in sys.argv[1:] if not p.endswith("*.xml")]))
