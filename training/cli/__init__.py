"""The `nld` command line. Errors the user can fix print one line, never a traceback.

Each command group registers its commands (`add_commands`): data, fit (train and the
pipeline's stages), measure (segment, evaluate, analyze, plot), paper (import-dynvae,
report) and serve. Importing this package imports neither torch nor numpy: `nld serve
--workers N` spawns workers that re-import it before they can answer their supervisor.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from nld.errors import NLDError
from training.cli import data, fit, measure, paper, serve


def parser() -> argparse.ArgumentParser:
    """The whole command line (`nld --help`), as `main` parses it and the docs print it."""
    p = argparse.ArgumentParser(prog="nld", description="Neural Langevin Dynamics")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (data, fit, measure, paper, serve):
        group.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv
    fn: Callable[[argparse.Namespace], None] = args.fn
    try:
        fn(args)
    except NLDError as e:
        print(f"nld: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nld: interrupted (state saved where a run was training)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
