"""The bridge to the IAM policy evaluator: ``tools/iam-eval`` (Node, @cloud-copilot/iam-simulate), run as a process.

A :class:`Case` is one request (principal, action, resource ARN, context keys) with the identity policies
of its principal and the resource policy of its resource; :func:`evaluate` sends a batch to
``tools/iam-eval/evaluate.mjs`` on stdin and reads back ``Allowed``, ``ExplicitlyDenied`` or
``ImplicitlyDenied`` with the statements that decided. The evaluator applies AWS's rules for a request
within one account, KMS's included (a key policy must allow the principal itself or delegate to the
account for an identity policy to count).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.privilege.policies import ROOT

TOOL = ROOT / "tools" / "iam-eval"
SCRIPT = TOOL / "evaluate.mjs"
ContextValue = str | Sequence[str]


@dataclass(frozen=True)
class Case:
    id: str
    principal: str  # the session ARN (or a service principal) making the request
    action: str
    resource: str
    account: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    identity_policies: Sequence[Mapping[str, Any]] = ()
    resource_policy: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "identityPolicies": list(self.identity_policies),
            "resourcePolicy": self.resource_policy,
            "request": {"principal": self.principal, "action": self.action, "resource": self.resource,
                        "resourceAccount": self.account,
                        "context": {k: list(v) if not isinstance(v, str) else v for k, v in self.context.items()}},
        }


@dataclass(frozen=True)
class Decision:
    id: str
    decision: str  # Allowed | ExplicitlyDenied | ImplicitlyDenied | Error
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision == "Allowed"


def evaluate(cases: Sequence[Case]) -> dict[str, Decision]:
    """Decide every case in one evaluator process; raises if the tool is not installed or fails."""
    if not (TOOL / "node_modules" / "@cloud-copilot" / "iam-simulate").exists():
        raise FileNotFoundError(f"{TOOL}/node_modules is missing: run `make check-privilege` (npm ci from the lockfile)")
    node = shutil.which("node")
    if node is None:
        raise FileNotFoundError("node is not on PATH (Node 20+ is needed for tools/iam-eval)")
    completed = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps({"cases": [c.to_json() for c in cases]}), capture_output=True, text=True,
        cwd=TOOL, check=True, timeout=300,
    )
    results = json.loads(completed.stdout)["results"]
    decisions = {r["id"]: Decision(r["id"], r["decision"], r["reason"] + (f" {r['errors']}" if r["errors"] else "")) for r in results}
    missing = {c.id for c in cases} - set(decisions)
    if missing:
        raise RuntimeError(f"the evaluator answered no decision for {sorted(missing)}")
    return decisions
