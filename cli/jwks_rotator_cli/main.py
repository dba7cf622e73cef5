"""``jwks-rotator``: the operator CLI.

Every setting of :data:`jwks_rotator.core.settings.SETTINGS` is an option of each
command (``--rotation-period 20s``), also read from the environment variable
the template gives the functions (``ROTATION_PERIOD``, ``KEYRING_SECRET_ID``).
Commands talk to AWS with the default credential chain, or to another
endpoint with the global ``--endpoint-url``. ``jwks-rotator local`` (from the
local cloud package, ``jwks-rotator-local``) writes a state file
(``.jwks-rotator-local.json`` in the working directory, or ``--state-file``)
with its endpoints, resource names and settings; when ``--endpoint-url`` names
that stack's AWS endpoint, commands take their defaults from it (explicit
options and environment variables still win), use dummy credentials and reach
its Lambda API, STS endpoint and JWKS URL; ``sign`` there acts as the stack's demo
caller role unless given ``--role-arn``::

    jwks-rotator local --port 8080 --rotation-period 20s --publish-lead 5s ...
    jwks-rotator --endpoint-url http://127.0.0.1:5000 status

Failures print one line on stderr: exit 2 for invalid settings, 1 otherwise.

Modules: :mod:`.app` (the group, global options, failures, finding ``local``),
:mod:`.context` (settings, state file, clients), :mod:`.output`,
:mod:`.status`, :mod:`.operate` (rotate, revoke, publish), :mod:`.tokens`
(sign, verify), :mod:`.policy` (policy check, policy test).
"""

from __future__ import annotations

from .app import cli
from .audit import audit
from .fault import fault
from .operate import publish, revoke, rotate
from .policy import policy
from .status import status
from .tokens import sign, verify
from .verifiers import verifiers

for _command in (status, rotate, revoke, publish, sign, verify, audit, policy, verifiers, fault):
    cli.add_command(_command)

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="jwks-rotator")


if __name__ == "__main__":
    main()
