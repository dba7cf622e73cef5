"""Signing keys: which algorithms exist, what a key record and a keyring may hold, and which kids are revoked."""
