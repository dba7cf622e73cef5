"""A CloudFormation stack on the local moto whose Outputs name the local resources, as the deployed stack's do.

Operator commands find a deployed stack's resources through ``DescribeStacks``
(``jwks-rotator --stack NAME``); this registers a stack of that name on the
local stack's moto so the same calls answer the same way there. It does not
deploy template.yaml (that is a later step): its template holds one harmless
resource moto supports (an SSM parameter under ``/jwks-rotator-local/stacks/``
saying which stack it belongs to; moto needs its name given) and Outputs carrying the local resources' ids and URLs
under the template's output names.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

DEFAULT_STACK_NAME = "jwks-rotator-local"


def outputs_template(stack_name: str, outputs: Mapping[str, str]) -> str:
    """The template body: one SSM parameter and an Output per value (empty values left out)."""
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "jwks-rotator local stack: publishes the local resources' ids (template.yaml is not deployed here)",
        "Resources": {
            "LocalStackMarker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": f"/jwks-rotator-local/stacks/{stack_name}/{uuid.uuid4().hex[:12]}",
                    "Type": "String",
                    "Value": stack_name,
                    "Description": "jwks-rotator local stack marker",
                },
            }
        },
        "Outputs": {key: {"Value": value} for key, value in outputs.items() if value},
    }
    return json.dumps(template)


def publish_stack(cloudformation: Any, stack_name: str, outputs: Mapping[str, str]) -> str:
    """Create the stack (replacing one of that name left by an earlier local stack in this moto process); returns its id."""
    body = outputs_template(stack_name, outputs)
    try:
        return str(cloudformation.create_stack(StackName=stack_name, TemplateBody=body)["StackId"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "AlreadyExistsException":
            raise
    cloudformation.delete_stack(StackName=stack_name)
    return str(cloudformation.create_stack(StackName=stack_name, TemplateBody=body)["StackId"])


def remove_stack(cloudformation: Any, stack_name: str) -> None:
    """Delete the stack; one already gone is fine."""
    with contextlib.suppress(ClientError):
        cloudformation.delete_stack(StackName=stack_name)
