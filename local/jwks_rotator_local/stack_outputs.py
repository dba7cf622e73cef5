"""A CloudFormation stack holding only Outputs, on a moto server: for tests of the operator CLI against given outputs.

The local stack deploys template.yaml itself (:mod:`.template_stack`), whose
Outputs the operator commands read. This module registers a stack of a given
name whose template holds one harmless resource moto supports (an SSM
parameter under ``/jwks-rotator-local/stacks/`` saying which stack it belongs
to; moto needs its name given) and the given Outputs, so a test can present
the CLI with a stack whose outputs it chooses. :data:`DEFAULT_STACK_NAME` is
the local stack's name.
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
        "Description": "jwks-rotator: a stack of given Outputs (tests of the operator CLI)",
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
