"""Composition roots, one per function: which adapter stands behind each port of the core, and how clients are made."""
