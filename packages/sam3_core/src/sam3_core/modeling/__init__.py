"""The neural-network parts of the SAM 3 family, one concept per file (no public API here)."""
