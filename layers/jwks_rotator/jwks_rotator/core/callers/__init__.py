"""Callers: whether a proof of an AWS identity holds, and which role (if any) the caller acts as."""
