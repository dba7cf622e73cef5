"""Reading template.yaml in the dev .venv: CloudFormation's short tags and the template's IAM statements."""

from __future__ import annotations

import re
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


_NO_VALUE = {"Ref": "AWS::NoValue"}


class Rendering:
    """The template as one stack would get it: its conditions decided, ``Fn::If`` chosen, ``AWS::NoValue`` dropped.

    Other intrinsics stay as written (a ``Ref`` to a resource, a ``Sub`` naming one), except a ``Sub``'s variables that
    are parameters or pseudo parameters, which are put in. Resources and outputs under a false condition are left out
    (and the ``Condition`` key of the others). What a stack per region deploys, read without AWS.
    """

    def __init__(self, template: dict[str, Any], parameters: dict[str, str] | None = None, *, region: str = "us-east-1",
                 stack: str = "jwks-rotator", account: str = "123456789012") -> None:
        self.template = template
        defaults = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
        self.parameters = {**defaults, **(parameters or {})}
        self.pseudo = {"AWS::Region": region, "AWS::StackName": stack, "AWS::AccountId": account, "AWS::Partition": "aws",
                       "AWS::URLSuffix": "amazonaws.com"}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.evaluate(self.template["Conditions"][name]))
        return self._conditions[name]

    def evaluate(self, node: Any) -> Any:
        """A condition's operand, fully evaluated (parameters and pseudo parameters only)."""
        if not isinstance(node, dict):
            return node
        (key, arg), = node.items()
        if key == "Ref":
            return self.pseudo[arg] if arg in self.pseudo else self.parameters[arg]
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals":
            return str(self.evaluate(arg[0])) == str(self.evaluate(arg[1]))
        if key == "Fn::Not":
            return not self.evaluate(arg[0])
        if key == "Fn::And":
            return all(self.evaluate(a) for a in arg)
        if key == "Fn::Or":
            return any(self.evaluate(a) for a in arg)
        if key == "Fn::Select":
            return self.evaluate(arg[1])[int(arg[0])]
        if key == "Fn::Split":
            return str(self.evaluate(arg[1])).split(arg[0])
        if key == "Fn::Join":
            return arg[0].join(str(self.evaluate(a)) for a in arg[1])
        if key == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.evaluate({"Ref": m.group(1)})), arg)
        raise ValueError(f"not evaluable in a condition: {node}")

    def render(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.render(item) for item in node) if v is not _DROPPED]
        if not isinstance(node, dict):
            return node
        if node == _NO_VALUE:
            return _DROPPED
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return self.render(yes if self.condition(name) else no)
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], list):
            text, variables = node["Fn::Sub"]
            variables = {k: self.render(v) for k, v in variables.items()}
            for name, value in list(variables.items()):
                if isinstance(value, dict) and set(value) == {"Ref"}:
                    if value["Ref"] in self.pseudo:
                        value = "${" + value["Ref"] + "}"  # as a Sub names it
                    elif value["Ref"] in self.parameters:
                        value = self.parameters[value["Ref"]]
                if isinstance(value, str):
                    text = text.replace("${" + name + "}", value)
                    del variables[name]
            return {"Fn::Sub": [text, variables]} if variables else {"Fn::Sub": text}
        out = {k: self.render(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _DROPPED}

    def section(self, name: str) -> dict[str, Any]:
        """``Resources`` or ``Outputs`` as the stack has them."""
        kept = {}
        for logical, item in self.template.get(name, {}).items():
            if "Condition" in item and not self.condition(item["Condition"]):
                continue
            kept[logical] = self.render({k: v for k, v in item.items() if k != "Condition"})
        return kept

    @property
    def resources(self) -> dict[str, Any]:
        return self.section("Resources")

    @property
    def outputs(self) -> dict[str, Any]:
        return self.section("Outputs")

    def environment(self, function: str) -> dict[str, Any]:
        globals_ = self.render(self.template.get("Globals", {})).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.resources[function]["Properties"].get("Environment", {}).get("Variables", {})
        return {**globals_, **own}


_DROPPED = object()
