"""Reading template.yaml in the dev .venv: CloudFormation's short tags and the template's IAM statements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation short tags: ``!Ref X`` -> ``{"Ref": X}``, ``!Sub s`` -> ``{"Fn::Sub": s}``.

    A key written twice in one mapping is an error (PyYAML keeps the last silently; CloudFormation refuses the
    template): a hand-written parameter or environment entry may not shadow a generated one.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key(s) {', '.join(duplicates)}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _cfn_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data, short tags turned into their long forms."""
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=CfnLoader)  # CfnLoader is a SafeLoader
    return document


def cfn_value(text: str) -> Any:
    """One CloudFormation value written in YAML (``!Ref X``, ``!If [...]``) as plain data."""
    return yaml.load(f"value: {text}", Loader=CfnLoader)["value"]  # CfnLoader is a SafeLoader


def function_environment(template: dict[str, Any], function: str) -> dict[str, Any]:
    """A function's environment variables as SAM deploys them: the Globals', then its own (which win)."""
    globals_ = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    return {**globals_, **own}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_of(statements: list[Any]) -> Iterator[dict[str, Any]]:
    """The statements of a policy document, a conditional one (``!If [C, statement, !Ref AWS::NoValue]``) as its statement."""
    for statement in statements:
        if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
            _, yes, no = statement["Fn::If"]
            yield from statements_of([branch for branch in (yes, no) if branch != {"Ref": "AWS::NoValue"}])
        else:
            yield statement


def policy_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every identity-policy statement: SAM function Policies and IAM policy resources (not key or bucket policies)."""
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            for policy in as_list(props.get("Policies", [])):
                assert isinstance(policy, dict) and "Statement" in policy, (
                    f"{name}: write policies out as statements (no SAM policy templates or managed policies)"
                )
                for statement in statements_of(policy["Statement"]):
                    yield name, statement
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
            documents = [props["PolicyDocument"]] if "PolicyDocument" in props else [p["PolicyDocument"] for p in props.get("Policies", [])]
            for document in documents:
                for statement in statements_of(document["Statement"]):
                    yield name, statement
