"""Least privilege in every region: a two-region issuer's roles, call by call (tests/privilege/regions.py).

Needs the translated template and the evaluator's npm packages: ``make check-privilege`` (part of ``make test``)
makes both first.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from jwks_rotator_local.call_record import RecordedCall
from tests.privilege.matrix import decide, decide_recorded, decide_regions, failures, render, render_regions
from tests.privilege.policies import extract, load_template, merged, with_replicas
from tests.privilege.recorded import RecordedRun
from tests.privilege.regions import PRIMARY, SECONDARY, region_pair, region_rows, totals
from tests.privilege.scenario import Recording


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_each_regions_roles_are_decided_as_listed(template: dict[str, Any]) -> None:
    results = decide_regions(template)
    bad = failures([(row, decision) for _, row, decision in results])
    assert not bad, render("decided otherwise:", bad)
    counts = totals(results)
    assert list(counts) == [PRIMARY, SECONDARY]
    for region, (count, good) in counts.items():
        assert count == good >= 20, render_regions(results)
        expected = {row.expected for r, row, _ in results if r == region}
        assert expected == {"allow", "deny"}, region  # both kinds, in each region


def test_a_secondary_signer_reads_its_replica_only_once_the_primary_names_it(template: dict[str, Any]) -> None:
    """The replica carries the primary's policy: before the primary's stack names the secondary's roles, it refuses them."""
    pair = region_pair(template)
    bare = dataclasses.replace(pair.primary, parameters={k: v for k, v in pair.primary.parameters.items() if not k.startswith("Secondary")})
    policies = merged(with_replicas(extract(template, bare), [SECONDARY]), extract(template, pair.secondary))
    rows = {row.case.id: row for _, row in region_rows(dataclasses.replace(pair, policies=policies))}
    read = dataclasses.replace(rows["secondary-signer-reads-its-view"], expected="deny")
    promote = dataclasses.replace(rows["secondary-rotate-reads-keyring-replica"], expected="deny")
    results = decide([read, promote])
    assert not failures(results), render("decided otherwise:", failures(results))


def test_recorded_calls_of_a_stack_in_two_regions_are_judged_against_both_stacks(template: dict[str, Any]) -> None:
    """A local stack per region records its calls in one file each: the secondary's signer reading its replica is allowed
    by the primary's replicated policy, which only the primary's file holds."""
    pair = region_pair(template)
    replica = pair.primary.resources["SigningKeySecret"].ref.replace(f":{PRIMARY}:", f":{SECONDARY}:")
    sign = pair.secondary.role_arn("SignFunctionRole")
    call = RecordedCall(sign, "secretsmanager:GetSecretValue", replica,
                        {"secretsmanager:VersionStage": ("AWSCURRENT",), "aws:RequestedRegion": SECONDARY})
    secondary = RecordedRun(("secondary.json",), template, Recording([call], [], pair.secondary), 1, 0)
    primary = RecordedRun(("primary.json",), template, Recording([], [], pair.primary), 0, 0)
    alone = decide_recorded([secondary])
    assert [d.decision for _, _, d in alone.recorded] == ["ImplicitlyDenied"]  # its own stack holds no policy of the replica
    together = decide_recorded([primary, secondary])
    assert [d.decision for _, _, d in together.recorded] == ["Allowed"]
    assert not together.written_failures()  # the primary's written list, against both stacks' policies
