"""Command line: ``python -m fluxgate demo``."""

from __future__ import annotations

import argparse
import sys

import fluxgate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fluxgate")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="simulate a flaky service behind a breaker")
    args = parser.parse_args(argv)
    if args.command == "demo":
        print(f"fluxgate {fluxgate.__version__}: native core installed.")
        print("The breaker demo arrives with the circuit breaker itself.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
