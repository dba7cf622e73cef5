"""``jwks-rotator``: the operator CLI.

A command lists only the settings it reads, as options (``--rotation-period 20s``) also read from the
environment variable the template gives the functions (``ROTATION_PERIOD``); ``local`` takes them all. With
``--stack`` (or ``JWKS_ROTATOR_STACK``) every setting is the stack's, and one given anyway is refused, named
as it was set. Commands talk to AWS with the default credential chain, or to another endpoint with the
global ``--endpoint-url``. ``jwks-rotator local`` (from ``jwks-rotator-local``) writes a state file
(``.jwks-rotator-local.json``, or ``--state-file``) with its endpoints, names and settings; when
``--endpoint-url`` names that stack's AWS endpoint, commands take their defaults from it, use dummy
credentials and reach its Lambda API, STS endpoint and JWKS URL; ``sign`` there acts as the demo caller::

    jwks-rotator local --port 8080 --rotation-period 20s --publish-lead 5s ...
    jwks-rotator --endpoint-url http://127.0.0.1:4566 --stack jwks-rotator-local doctor

Failures print one line on stderr: exit 2 for invalid settings, 1 otherwise; under ``--json`` stdout holds
exactly one JSON document. Modules: :mod:`.app` (the group, failures, finding ``local``), :mod:`.context`,
:mod:`.output`, :mod:`.status`, :mod:`.operate` (rotate, revoke, publish, promote), :mod:`.tokens` (sign, verify),
:mod:`.policy`, :mod:`.doctor` (with :mod:`.doctor_checks`), :mod:`.audit`.
"""

from __future__ import annotations

from .app import cli
from .audit import audit
from .doctor import doctor
from .fault import fault
from .operate import promote, publish, revoke, rotate
from .policy import policy
from .status import status
from .tokens import sign, verify
from .verifiers import verifiers

for _command in (status, rotate, revoke, publish, promote, sign, verify, audit, policy, doctor, verifiers, fault):
    cli.add_command(_command)

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="jwks-rotator")


if __name__ == "__main__":
    main()
