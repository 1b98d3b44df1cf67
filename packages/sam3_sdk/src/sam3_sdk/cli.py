"""The `sam3` command line."""

from __future__ import annotations

import argparse

from . import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam3", description="SAM 3 from the command line")
    parser.add_argument("--version", action="version", version=f"sam3-sdk {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0
