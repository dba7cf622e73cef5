"""The sign path's adapters, standard library only: HTTP, the secrets extension, STS replay, telemetry and audit."""
