"""Task-oriented SAM 3: plain Python and numpy in and out. See README.md."""

__version__ = "0.1.0"
