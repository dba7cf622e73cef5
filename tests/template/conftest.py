"""The template, read once per test module."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.cfn import load_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def params(template: dict[str, Any]) -> dict[str, Any]:
    return template["Parameters"]


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]
