"""Screen-sharing benchmark: the whole pipeline on loopback, next to x11vnc.

The command line of ``python -m bench.screen`` (see bench/screen/__init__.py); the
user and viewer processes are this command too, with ``--role``.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.screen.common import SCENES
from bench.screen.orchestrate import orchestrate
from bench.screen.user import user_role
from bench.screen.viewer import viewer_role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--scenes", default=",".join(SCENES))
    parser.add_argument("--no-vnc", action="store_true")
    parser.add_argument("--role", choices=("user", "viewer"), help=argparse.SUPPRESS)
    parser.add_argument("--relay", help=argparse.SUPPRESS)
    parser.add_argument("--org", help=argparse.SUPPRESS)
    parser.add_argument("--tech", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--display", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "user":
        asyncio.run(user_role(args))
        return 0
    if args.role == "viewer":
        viewer_role(args)
        return 0
    print(json.dumps(orchestrate(args), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
