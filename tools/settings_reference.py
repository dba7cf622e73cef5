"""Writes the settings' template entries and docs/settings.md from their one declaration (``make settings``).

Each setting is declared once in ``core/settings.py`` (:func:`jwks_rotator.core.settings.setting`). From the
declarations this writes, between ``# BEGIN generated: NAME`` / ``# END generated: NAME`` lines of template.yaml,
the settings' parameters, their parameter groups and the functions' environment entries, and the whole of
docs/settings.md. Everything else in the template stays hand-written. ``--check`` writes nothing and exits 1
when a file differs from what would be written. Standard library only: the template is edited as text, its
short tags (!Ref, !Sub) untouched. Why generated rather than checked: docs/design/settings.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from jwks_rotator.core.settings import FUNCTIONS, SETTINGS, Parameter, SettingSpec, StackValue

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
DOCS = ROOT / "docs" / "settings.md"
SOURCE = "layers/jwks_rotator/jwks_rotator/core/settings.py"

GROUPS = ("Keys", "Tokens", "Callers", "Publishing", "Operations", "Audit", "Regions")
"""The console's parameter groups, in order; a setting's :class:`Parameter` names one."""

TEMPLATE_ONLY_PARAMETERS = {
    "Callers": ("SignInvokerPrincipal",),
    "Publishing": ("DomainName", "CertificateArn"),
    "Operations": (
        "RefusalBurstThreshold", "AlarmEmail", "LogRetentionInDays", "JwksVersionRetentionDays", "BreakGlassRoleArn",
        "ParametersSecretsExtensionLayerArn", "CodeSigningConfigArn", "SignMemorySize", "SignSnapStart", "SignProvisionedConcurrency",
        "SignCodeRevision",
    ),
    "Audit": ("AuditLogRetentionInDays", "AuditLogKmsKeyArn"),
    "Regions": (
        "PrimaryKeyringSecretArn", "PrimaryDistributionId", "PrimaryRotateRoleArn", "SecondarySignRoleArns",
        "SecondaryRotateRoleArns", "RevocationReachAlarmThreshold",
    ),
}
"""Hand-written template parameters that are not settings (no function reads them as one), by console group."""

READERS = {"RotateFunction": "rotate function", "SignFunction": "sign function"}
WRITTEN_BY = f"Written by `make settings` from the declarations in {SOURCE}: edit those, not this."
_WIDTH = 110
_MARKER = re.compile(r"^(?P<indent> *)# (?P<edge>BEGIN|END) generated: (?P<name>[a-zA-Z ]+?)\s*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


class RegionError(ValueError):
    """template.yaml's generated regions are missing, unbalanced or cannot hold what must be written."""


# --------------------------------------------------------------------------- YAML text
def _scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when it can only read as that string, else single-quoted."""
    plain = re.fullmatch(r"[A-Za-z][A-Za-z0-9._/-]*", text) and text.lower() not in _YAML_WORDS
    if plain or re.fullmatch(r"[0-9]+[smhdw]", text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _flow_list(key: str, items: Sequence[str], indent: str) -> list[str]:
    """``key: [a, b, ...]`` wrapped at the width, continuation lines indented past the key."""
    body = "[" + ", ".join(_scalar(item) for item in items) + "]"
    return textwrap.wrap(f"{key}: {body}", _WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False)


def _text_field(key: str, text: str, indent: str) -> list[str]:
    """``key: 'text'`` on one line when it fits, else a folded block (``>-``) that reads back as ``text``."""
    line = f"{indent}{key}: {_scalar(text)}"
    if len(line) <= _WIDTH and "\n" not in text:
        return [line]
    inner = indent + "  "
    return [f"{indent}{key}: >-", *textwrap.wrap(text, _WIDTH, initial_indent=inner, subsequent_indent=inner,
                                                  break_long_words=False, break_on_hyphens=False)]


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=indent + "# ", subsequent_indent=indent + "# ",
                         break_long_words=False, break_on_hyphens=False)


_KEBAB = sorted((s for s in SETTINGS if "-" in s.kebab), key=lambda s: -len(s.kebab))


def as_parameter_names(text: str) -> str:
    """``text`` with each setting written as the template names it (``publish-lead`` -> ``PublishLead``)."""
    for spec in _KEBAB:
        text = re.sub(rf"(?<![\w-]){re.escape(spec.kebab)}(?![\w-])", spec.pascal, text)
    return text


# --------------------------------------------------------------------------- what the template holds
def parameter_of(spec: SettingSpec) -> Parameter | None:
    return spec.stack if isinstance(spec.stack, Parameter) else None


def parameter_description(spec: SettingSpec) -> str:
    """The template parameter's Description: the setting's meaning, then what the template does with it."""
    stack = parameter_of(spec)
    assert stack is not None
    return as_parameter_names(" ".join(part for part in (spec.doc, stack.note) if part))


def environment_value(spec: SettingSpec) -> str:
    """The environment entry's value, as CloudFormation YAML: the parameter, or the declared expression."""
    if isinstance(spec.stack, StackValue):
        return spec.stack.value
    assert spec.stack is not None
    return spec.stack.value or f"!Ref {spec.pascal}"


def _everywhere(spec: SettingSpec) -> bool:
    return set(spec.readers) == set(FUNCTIONS)


def render_parameters(indent: str) -> list[str]:
    lines = _comment(WRITTEN_BY, indent)
    for spec in SETTINGS:
        stack = parameter_of(spec)
        if stack is None:
            continue
        inner = indent + "  "
        lines.append(f"{indent}{spec.pascal}:")
        lines.append(f"{inner}Type: {stack.type}")
        default = _scalar(spec.default) if spec.default else '""'
        lines.append(f"{inner}Default: {default}")
        if stack.allowed_values:
            lines += _flow_list("AllowedValues", stack.allowed_values, inner)
        if stack.pattern:
            lines.append(f"{inner}AllowedPattern: {_scalar(stack.pattern)}")
        if stack.constraint:
            lines += _text_field("ConstraintDescription", stack.constraint, inner)
        lines += _text_field("Description", parameter_description(spec), inner)
    return lines


def render_parameter_groups(indent: str) -> list[str]:
    lines = _comment(WRITTEN_BY, indent)
    lines.append(f"{indent}AWS::CloudFormation::Interface:")
    lines.append(f"{indent}  ParameterGroups:")
    for group in GROUPS:
        names = [s.pascal for s in SETTINGS if (p := parameter_of(s)) is not None and p.group == group]
        names += TEMPLATE_ONLY_PARAMETERS.get(group, ())
        lines.append(f"{indent}    - Label: {{ default: {group} }}")
        lines += _flow_list("Parameters", names, indent + "      ")
    return lines


def render_environment(indent: str, function: str | None) -> list[str]:
    """Environment entries: read by every function (``function`` None: the Globals), or by ``function`` alone."""
    lines = _comment(WRITTEN_BY, indent)
    for spec in SETTINGS:
        wanted = _everywhere(spec) if function is None else (function in spec.readers and not _everywhere(spec))
        if not wanted:
            continue
        if isinstance(spec.stack, StackValue) and spec.stack.why:
            lines += _comment(spec.stack.why, indent)
        lines.append(f"{indent}{spec.env}: {environment_value(spec)}")
    return lines


def _check_declarations() -> None:
    for spec in SETTINGS:
        if spec.stack is None:
            raise RegionError(f"{spec.attribute}: declare how the stack sets it (stack=Parameter(...) or StackValue(...))")
        unknown = set(spec.readers) - set(FUNCTIONS)
        if unknown or not spec.readers:
            raise RegionError(f"{spec.attribute}: readers must be among {', '.join(FUNCTIONS)}, got {spec.readers}")
        stack = parameter_of(spec)
        if stack is not None and stack.group not in GROUPS:
            raise RegionError(f"{spec.attribute}: group {stack.group!r} is not one of {', '.join(GROUPS)}")


# --------------------------------------------------------------------------- regions
@dataclass(frozen=True)
class Region:
    name: str
    indent: str
    begin: int  # index of the BEGIN line
    end: int  # index of the END line


def regions(lines: Sequence[str]) -> dict[str, Region]:
    """Every generated region of the template, by name; :class:`RegionError` if unbalanced or nested."""
    found: dict[str, Region] = {}
    open_: tuple[str, str, int] | None = None
    for index, line in enumerate(lines):
        match = _MARKER.match(line)
        if not match:
            continue
        name, indent = match["name"], match["indent"]
        if match["edge"] == "BEGIN":
            if open_ is not None:
                raise RegionError(f"line {index + 1}: region {name!r} begins inside {open_[0]!r}")
            if name in found:
                raise RegionError(f"line {index + 1}: region {name!r} appears twice")
            open_ = (name, indent, index)
        else:
            if open_ is None or open_[0] != name or open_[1] != indent:
                raise RegionError(f"line {index + 1}: END of {name!r} without its BEGIN at the same indentation")
            found[name] = Region(name, indent, open_[2], index)
            open_ = None
    if open_ is not None:
        raise RegionError(f"region {open_[0]!r} has no END line")
    return found


def _function_region(function: str) -> str:
    return f"settings environment {function}"


def render_template(text: str) -> str:
    """``text`` (template.yaml) with every generated region written anew from the declarations."""
    _check_declarations()
    lines = text.splitlines()
    found = regions(lines)
    renderers: dict[str, Callable[[str], list[str]]] = {
        "settings parameter groups": render_parameter_groups,
        "settings parameters": render_parameters,
        "settings environment": partial(render_environment, function=None),
    }
    for function in FUNCTIONS:
        name = _function_region(function)
        own = [s.env for s in SETTINGS if function in s.readers and not _everywhere(s)]
        if name in found:
            renderers[name] = partial(render_environment, function=function)
        elif own:
            raise RegionError(
                f"{', '.join(own)} are read by {function} alone: add '# BEGIN generated: {name}' and its END line inside "
                f"{function}'s Environment: Variables: in template.yaml, then run make settings again"
            )
    missing = sorted(set(renderers) - set(found))
    if missing:
        raise RegionError(f"template.yaml lacks the generated region(s) {', '.join(missing)}")
    unknown = sorted(set(found) - set(renderers))
    if unknown:
        raise RegionError(f"template.yaml has generated region(s) nothing writes: {', '.join(unknown)}")
    for region in sorted(found.values(), key=lambda r: r.begin, reverse=True):
        lines[region.begin + 1 : region.end] = renderers[region.name](region.indent)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- docs/settings.md
def _wrap(text: str, prefix: str = "", indent: str = "") -> list[str]:
    return textwrap.wrap(text, 120, initial_indent=prefix, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def _code(text: str) -> str:
    return f"`{text}`" if text else "empty"


def _readers(spec: SettingSpec) -> str:
    return ", ".join(f"{READERS[f]} (`{f}`)" for f in FUNCTIONS if f in spec.readers)


def _sections() -> list[tuple[str, list[SettingSpec]]]:
    sections = [(g, [s for s in SETTINGS if (p := parameter_of(s)) is not None and p.group == g]) for g in GROUPS]
    sections.append(("Set by the stack", [s for s in SETTINGS if isinstance(s.stack, StackValue)]))
    return [(title, specs) for title, specs in sections if specs]


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def _setting_section(spec: SettingSpec) -> list[str]:
    out = [f"### {spec.kebab}", "", *_wrap(spec.doc)]
    if spec.details:
        out += ["", *_wrap(spec.details)]
    out += ["", f"- Command line: `--{spec.kebab}`; environment: `{spec.env}`", f"- Default: {_code(spec.default)}"]
    stack = spec.stack
    if isinstance(stack, Parameter):
        out.append(f"- Template parameter: `{spec.pascal}` ({stack.type})")
        if stack.allowed_values:
            out.append("- Accepts: one of " + ", ".join(f"`{v}`" for v in stack.allowed_values))
        elif stack.constraint:
            out += _wrap(f"Accepts: {stack.constraint}", "- ", "  ")
        if stack.note:
            out += _wrap(f"Note: {stack.note}", "- ", "  ")
        if stack.value:
            out.append(f"- Environment entry: `{stack.value}`")  # not wrapped: a code span reads best on one line
    elif isinstance(stack, StackValue):
        out += _wrap(f"Template: no parameter; the stack sets `{stack.value}`. {stack.why}".rstrip(), "- ", "  ")
    out += _wrap(f"Read by: {_readers(spec)}", "- ", "  ")
    return [*out, ""]


def render_docs() -> str:
    """docs/settings.md: every setting, its names, default, accepted values, meaning and readers."""
    _check_declarations()
    sections = _sections()
    out = [
        "# Settings reference",
        "",
        "Every deployment setting of jwks-rotator: its command-line option, environment variable, template parameter,",
        "default, accepted values, meaning and which functions read it.",
        "",
        f"<!-- {WRITTEN_BY} -->",
        "",
        "A setting has one name written three ways: kebab-case on the command line (`--rotation-period`), PascalCase as",
        "a template parameter (`RotationPeriod`) and upper snake case in the functions' environment (`ROTATION_PERIOD`).",
        "Durations take seconds or one unit: `30s`, `15m`, `12h`, `7d`, `1w`. Each function builds the settings from its",
        "environment at cold start and refuses a combination that breaks a rule (the rules are in each setting's",
        "meaning; a bad one fails the first invocation with `invalid_configuration`, naming the rule). The template's",
        "other parameters (custom domain, alarms, log retention, the break-glass role, the extension layer) are not",
        "settings: template.yaml describes them.",
        "",
        "## Contents",
        "",
        "- [Summary](#summary)",
    ]
    for title, specs in sections:
        out += _wrap(f"[{title}](#{_anchor(title)}): " + ", ".join(f"[{s.kebab}](#{s.kebab})" for s in specs), "- ", "  ")
    out += ["", "## Summary", "", "| setting | default | template parameter |", "|---|---|---|"]
    for spec in SETTINGS:
        parameter = f"`{spec.pascal}`" if parameter_of(spec) else "(set by the stack)"
        out.append(f"| [{spec.kebab}](#{spec.kebab}) | {_code(spec.default)} | {parameter} |")
    out.append("")
    for title, specs in sections:
        out += [f"## {title}", ""]
        for spec in specs:
            out += _setting_section(spec)
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- command
def outputs(template: Path = TEMPLATE) -> dict[Path, str]:
    """Each generated file and the text it should hold."""
    return {template: render_template(template.read_text()), DOCS: render_docs()}


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make settings", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file is out of date")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        wanted = outputs()
    except RegionError as exc:
        print(f"settings: {exc}", file=sys.stderr)
        return 2
    stale = [path for path, text in wanted.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"settings: {path.relative_to(ROOT)} differs from its declarations: run make settings", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"settings: wrote {path.relative_to(ROOT)}")
    if not stale:
        print("settings: template.yaml and docs/settings.md are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
