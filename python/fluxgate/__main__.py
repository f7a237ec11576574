"""Command line: ``python -m fluxgate demo``, ``bench`` and ``shared``."""

from __future__ import annotations

import argparse
import sys


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _workers(text: str) -> int:
    from fluxgate._demo import MAX_WORKERS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text}") from None
    if not 2 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be from 2 to {MAX_WORKERS}, not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fluxgate",
        description="fluxgate: a composable circuit breaker with a native core.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="watch a flaky service behind a breaker (a simulation, about 12 s)",
        description=(
            "Simulate a minute in the life of a service that slows down, fails "
            "and recovers, called through a circuit breaker, and print the "
            "timeline. No network; time is simulated."
        ),
    )
    demo.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="run the calls through AsyncCircuitBreaker",
    )
    demo.add_argument(
        "--seed", type=int, default=None, help="random seed (default: a fixed one)"
    )
    demo.add_argument(
        "--pace",
        type=_non_negative,
        default=None,
        metavar="SECONDS",
        help=(
            "real seconds per simulated second (default: 0.2 on a terminal, "
            "0.1 with --workers, 0 otherwise, which prints the whole story at once)"
        ),
    )
    demo.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help=(
            "tell the story with N worker processes (2 to 16), first with a breaker "
            "per worker, then with one breaker shared by all of them "
            "(shared=HostMemory(...)), and count the calls that reached the service"
        ),
    )
    bench = commands.add_parser(
        "bench",
        help="measure what protection costs on this machine (about 10 s)",
        description=(
            "Time protected calls against bare ones (sync and async), an OPEN "
            "rejection against a bare raise, and measure memory per breaker."
        ),
    )
    bench.add_argument(
        "--quick", action="store_true", help="a rough run of well under 2 s"
    )
    shared = commands.add_parser(
        "shared",
        help="list, reset or remove the breakers shared by this host's processes",
        description=(
            "The shared breakers (HostMemory segments) of this user: list them "
            "with their state, reset one (a new period, CLOSED, an empty window; "
            "as reset() in one of its processes), or unlink one."
        ),
    )
    shared_commands = shared.add_subparsers(dest="shared_command", required=True)
    for action, text in (
        ("list", "one line per segment: name, breaker, window, state"),
        ("reset", "reset the named breaker, for every process using it"),
        ("unlink", "remove the named segment (processes attached keep theirs)"),
    ):
        sub = shared_commands.add_parser(action, help=text, description=text)
        if action != "list":
            sub.add_argument("name", help="the HostMemory name")
        sub.add_argument(
            "--directory", default=None, help="where the segments are (default: as HostMemory)"
        )
    return parser


def _shared(args: argparse.Namespace) -> int:
    from fluxgate import shared

    if args.shared_command == "unlink":
        shared.HostMemory.unlink(args.name, directory=args.directory)
        return 0
    if args.shared_command == "reset":
        shared._reset(args.name, directory=args.directory)
        return 0
    for name, path in shared._segments(args.directory):
        try:
            d = shared._describe(path)
        except (OSError, ValueError) as error:
            print(f"{name}\tunusable: {error}")
            continue
        breaker = "AsyncCircuitBreaker" if d["async"] else "CircuitBreaker"
        print(
            f"{name}\t{breaker}\t{d['window_kind']}({d['window_size']})\t{d['state']}"
            f"\treopens={d['reopens']}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "shared":
        try:
            return _shared(args)
        except (OSError, ValueError) as error:
            print(f"python -m fluxgate shared: {error}", file=sys.stderr)
            return 1
    if args.command == "bench":
        from fluxgate import _bench

        return _bench.run(sys.stdout, quick=args.quick)
    from fluxgate import _demo

    seed: int = _demo.DEFAULT_SEED if args.seed is None else args.seed
    if args.workers is not None:
        if args.use_async:
            parser.error("--workers runs CircuitBreaker only, not with --async")
        return _demo.run_workers(sys.stdout, workers=args.workers, seed=seed, pace=args.pace)
    return _demo.run(sys.stdout, seed=seed, pace=args.pace, use_async=args.use_async)


if __name__ == "__main__":
    sys.exit(main())
