"""Rewrite YAML issuance policy files of the built sign function as the same document in JSON (run by `make build`).

The function reads a policy whose text starts with ``{`` as JSON and then never imports PyYAML (~5 ms of a cold
start, more on a busy host). The document, and so the policy digest in every audit line, is unchanged: each file is
parsed by the function's own reader (a repeated key refused), written as JSON, and the JSON read back must give the
same document; a file that does not round-trip (a YAML date, say) is left as it is. Usage: python policy_as_json.py
FILE... (with the built layer on PYTHONPATH).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.issuance.profiles import policy_document


def main(paths: list[str]) -> int:
    for name in paths:
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("{"):
            continue
        try:
            document = policy_document(text)
            as_json = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        except (ConfigurationError, TypeError, ValueError) as exc:
            print(f"   {path.name}: left as YAML ({exc})")
            continue
        if policy_document(as_json) != document:
            print(f"   {path.name}: left as YAML (does not round-trip through JSON)")
            continue
        path.write_text(as_json, encoding="utf-8")
        print(f"   {path.name}: written as JSON (the same document and digest; no PyYAML at cold start)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
