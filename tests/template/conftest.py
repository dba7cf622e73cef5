"""The template, read once per test module."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.cfn import Rendering, load_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def params(template: dict[str, Any]) -> dict[str, Any]:
    return template["Parameters"]


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="module")
def single_region(template: dict[str, Any]) -> Rendering:
    """The template as a one-region stack gets it (every parameter at its default): what every stack was before regions."""
    return Rendering(template)


@pytest.fixture(scope="module")
def single_resources(single_region: Rendering) -> dict[str, Any]:
    return single_region.resources
