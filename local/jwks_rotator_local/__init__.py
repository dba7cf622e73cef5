"""The local cloud: jwks-rotator on loopback with moto standing in for AWS.

:mod:`.local_stack` (``LocalStack``: moto, the template's resources, the
functions behind a Lambda Invoke API, a caching edge and a schedule),
:mod:`.edge`, :mod:`.lambda_api`, :mod:`.loopback_server`, :mod:`.sam_template`
(template.yaml translated), :mod:`.template_stack` (deployed with create_stack),
:mod:`.cfn_resources` (the types moto lacks), :mod:`.function_env` (each
function's own environment and credentials), :mod:`.provision` (a hand-made
subset of the resources, for tests that name them), :mod:`.functions` (loads
the handlers) and :mod:`.command` (``jwks-rotator local``).
"""

__version__ = "0.1.0"
