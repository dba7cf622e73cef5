"""Issuance: what a caller may ask for (request limits, caller profiles) and how a token is signed and audited."""
