"""`make bench`: speed of sam3_core next to the reference (see benchmarks/run.py)."""
