"""The local cloud: jwks-rotator on loopback with moto standing in for AWS.

:mod:`.local_stack` (``LocalStack``: moto, the template's resources, the
functions behind a Lambda Invoke API, a caching edge and a schedule),
:mod:`.edge`, :mod:`.lambda_api`, :mod:`.loopback_server`, :mod:`.provision`
(the template's resources), :mod:`.functions` (loads the handlers) and
:mod:`.command` (``jwks-rotator local``).
"""

__version__ = "0.1.0"
