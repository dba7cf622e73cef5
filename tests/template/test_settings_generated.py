"""The settings' template entries and docs/settings.md are exactly what their declarations make (``make settings``).

Text first: each generated region of template.yaml, and docs/settings.md, equals what tools/settings_reference.py
would write now. Then meaning, on the parsed template: every declared parameter with its type, default and
constraints, every function's environment holding exactly the settings it reads (plus the extension's own), each
parameter in one console group, no key written twice. Then the check itself: it notices each kind of drift.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from jwks_rotator.core.settings import FUNCTIONS, SETTINGS, Parameter, SettingSpec, StackValue
from tests.template.cfn import TEMPLATE_PATH, CfnLoader, cfn_value, function_environment
from tests.template.test_template import EXTENSION_ENV
from tools import settings_reference as reference

SETTING_ENVS = {s.env for s in SETTINGS}


def _parameter(spec: SettingSpec) -> Parameter | None:
    return spec.stack if isinstance(spec.stack, Parameter) else None


# --------------------------------------------------------------------------- the files are what the generator writes
@pytest.mark.parametrize("path", [TEMPLATE_PATH, reference.DOCS], ids=lambda p: p.name)
def test_generated_file_is_up_to_date(path: Path) -> None:
    wanted = reference.outputs()[path]
    assert path.read_text() == wanted, f"{path.name} differs from the settings' declarations: run `make settings`"


def test_the_template_has_each_generated_region_once() -> None:
    found = reference.regions(TEMPLATE_PATH.read_text().splitlines())
    assert {"settings parameters", "settings parameter groups", "settings environment"} <= set(found)


# --------------------------------------------------------------------------- what the template means
def test_every_declared_parameter_is_in_the_template_as_declared(params: dict[str, Any]) -> None:
    for spec in SETTINGS:
        stack = _parameter(spec)
        if stack is None:
            assert spec.pascal not in params, f"{spec.pascal}: the stack sets {spec.kebab}, it is no parameter"
            continue
        param = params[spec.pascal]
        assert param["Type"] == stack.type
        assert str(param["Default"]) == spec.default
        assert [str(v) for v in param.get("AllowedValues", [])] == list(stack.allowed_values)
        assert param.get("AllowedPattern", "") == stack.pattern
        assert param.get("ConstraintDescription", "") == stack.constraint
        assert param["Description"] == reference.parameter_description(spec)
        assert len(param["Description"]) <= 4000  # CloudFormation's limit


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_gets_exactly_the_settings_it_reads(template: dict[str, Any], function: str) -> None:
    variables = function_environment(template, function)
    for spec in SETTINGS:
        if function in spec.readers:
            assert spec.env in variables, f"{function} reads {spec.kebab} but its environment has no {spec.env}"
            assert variables[spec.env] == cfn_value(reference.environment_value(spec)), spec.env
        else:
            assert spec.env not in variables, f"{function} does not read {spec.kebab}, yet gets {spec.env}"
    extension = EXTENSION_ENV if function == "SignFunction" else {}
    undeclared = set(variables) - SETTING_ENVS - set(extension)
    assert not undeclared, f"{function}'s environment has entries no setting declares: {sorted(undeclared)}"


def test_every_parameter_is_a_setting_or_a_listed_template_parameter(params: dict[str, Any]) -> None:
    settings = {s.pascal for s in SETTINGS if _parameter(s)}
    template_only = {name for names in reference.TEMPLATE_ONLY_PARAMETERS.values() for name in names}
    assert not settings & template_only
    assert set(params) == settings | template_only


def test_every_parameter_is_in_its_console_group(template: dict[str, Any], params: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert [g["Label"]["default"] for g in groups] == list(reference.GROUPS)
    listed = [name for g in groups for name in g["Parameters"]]
    assert sorted(listed) == sorted(params), "each parameter in exactly one group"
    by_group = {g["Label"]["default"]: g["Parameters"] for g in groups}
    for spec in SETTINGS:
        if (stack := _parameter(spec)) is not None:
            assert spec.pascal in by_group[stack.group]


def test_stack_values_name_what_the_template_defines(template: dict[str, Any]) -> None:
    """A StackValue's !Ref/!GetAtt names a resource of the template, a role SAM makes for a function, or a pseudo parameter."""
    resources = template["Resources"]
    sam_roles = {f"{name}Role" for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function" and "Role" not in r["Properties"]}
    names = set(resources) | set(template["Parameters"]) | sam_roles
    for spec in SETTINGS:
        if isinstance(spec.stack, StackValue):
            value = cfn_value(spec.stack.value)
            target = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
            if target is not None:
                assert target.startswith("AWS::") or target in names, f"{spec.env}: {target} is not in the template"


def test_docs_describe_every_setting_under_all_its_names() -> None:
    text = reference.DOCS.read_text()
    lines = text.splitlines()
    assert lines[0] == "# Settings reference" and lines[2], "a title, then the page's purpose"
    assert "## Contents" in lines
    assert max(len(line) for line in lines) <= 200
    for spec in SETTINGS:
        section = text.split(f"\n### {spec.kebab}\n", 1)[1].split("\n### ", 1)[0]
        assert f"`--{spec.kebab}`" in section and f"`{spec.env}`" in section
        assert spec.doc.split()[0] in section
        assert (f"`{spec.pascal}`" in section) == (_parameter(spec) is not None)


# --------------------------------------------------------------------------- the check notices drift
def _template_text() -> str:
    return TEMPLATE_PATH.read_text()


def test_a_hand_edit_inside_a_region_is_drift() -> None:
    text = _template_text()
    edited = text.replace("        ALGORITHM: !Ref Algorithm\n", "        ALGORITHM: RS256\n", 1)
    assert edited != text
    assert reference.render_template(edited) == text


def test_a_lost_entry_is_drift() -> None:
    text = _template_text()
    edited = re.sub(r"\n        OPERATOR_ROLES: [^\n]*", "", text, count=1)
    assert edited != text
    assert reference.render_template(edited) == text


def test_an_entry_outside_the_regions_is_refused(template: dict[str, Any]) -> None:
    """A hand-written environment entry no setting declares, or a second entry for a generated one."""
    text = _template_text()
    stray = text.replace(
        '          SSM_PARAMETER_STORE_TTL: "0"\n', '          SSM_PARAMETER_STORE_TTL: "0"\n          SIGNER_MODE: fast\n', 1
    )
    assert stray != text
    variables = function_environment(yaml.load(stray, Loader=CfnLoader), "SignFunction")
    assert set(variables) - SETTING_ENVS - set(EXTENSION_ENV) == {"SIGNER_MODE"}
    twice = text.replace("  DomainName:\n", "  Algorithm:\n    Type: String\n  DomainName:\n", 1)
    assert twice != text
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        yaml.load(twice, Loader=CfnLoader)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("        # END generated: settings environment\n", "", 1), "no END line|begins inside"),
        (lambda t: t.replace("        # BEGIN generated: settings environment\n", "", 1), "without its BEGIN"),
        (lambda t: re.sub(r"  # BEGIN generated: settings parameter groups\n(.|\n)*?  # END generated: settings parameter groups\n", "", t), "lacks"),
    ],
    ids=["unclosed", "unopened", "missing"],
)
def test_broken_regions_are_refused(change: Any, message: str) -> None:
    text = _template_text()
    with pytest.raises(reference.RegionError, match=message):
        reference.render_template(change(text))


def test_a_setting_one_function_reads_alone_needs_that_function_s_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator never drops a reader's entry: without a region in that function it refuses, naming the fix."""
    spec = next(s for s in SETTINGS if s.attribute == "default_audience")
    sign_only = dataclasses.replace(spec, readers=("SignFunction",))
    monkeypatch.setattr(reference, "SETTINGS", tuple(sign_only if s is spec else s for s in SETTINGS))
    with pytest.raises(reference.RegionError, match="settings environment SignFunction"):
        reference.render_template(_template_text())
    text = _template_text().replace(
        '          SSM_PARAMETER_STORE_TTL: "0"\n',
        '          SSM_PARAMETER_STORE_TTL: "0"\n          # BEGIN generated: settings environment SignFunction\n'
        "          # END generated: settings environment SignFunction\n",
        1,
    )
    rendered = yaml.load(reference.render_template(text), Loader=CfnLoader)
    assert "DEFAULT_AUDIENCE" not in rendered["Globals"]["Function"]["Environment"]["Variables"]
    assert function_environment(rendered, "SignFunction")["DEFAULT_AUDIENCE"] == {"Ref": "DefaultAudience"}
    assert "DEFAULT_AUDIENCE" not in function_environment(rendered, "RotateFunction")
