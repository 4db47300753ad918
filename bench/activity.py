"""Cost of the local-input monitor per event, with and without console attribution.

An Xvfb of its own; a separate XTest connection plays ``--events`` pointer
moves (local input: not in the injector's ledger) as fast as it can, and
:class:`~client.core.control.activity.XActivityMonitor` reads them. Prints
JSON with the CPU time the monitor's ``read()`` spent per event (p50 over
``--rounds`` rounds) and the X round trips it made, for:

- ``off``: ``console_classes=()``, no attribution (the code before it existed);
- ``user_window``: attribution on, the focus and pointer in an ordinary window;
- ``console_window``: attribution on, the focus in a window named like the console;
- ``user_window_uncached``: as ``user_window`` with ``focus_ttl=0`` (a focus
  and a pointer query for every event: what the cache saves).

Usage: python -m bench.activity [--events 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import statistics
import time
from typing import Any

from Xlib import X, display as xdisplay
from Xlib.ext import xtest

from bench.input import xvfb
from client.core.control.activity import (
    TECHNICIAN_CONSOLE_CLASS,
    InjectionLedger,
    XActivityMonitor,
)


def _round(
    display: str,
    player: Any,
    focus: Any,
    events: int,
    classes: tuple[str, ...],
    focus_ttl: float,
) -> tuple[float, int, int]:
    """(read CPU seconds, events seen, flagged) for one round."""
    player.set_input_focus(focus, X.RevertToParent, X.CurrentTime)
    player.sync()
    monitor = XActivityMonitor(
        display, ledger=InjectionLedger(), console_classes=classes, focus_ttl=focus_ttl
    )
    try:
        for i in range(events):
            # Inside the focused window, a new pixel each time.
            xtest.fake_input(player, X.MotionNotify, x=100 + i % 400, y=100 + i // 400 % 400)
        player.sync()
        seen = flagged = 0
        spent = 0.0
        deadline = time.monotonic() + 30
        while seen < events and time.monotonic() < deadline:
            select.select([monitor.fileno()], [], [], 0.1)
            start = time.process_time()
            found = monitor.read()
            spent += time.process_time() - start
            seen += len(found)
            flagged += sum(e.technician_console for e in found)
        return spent, seen, flagged
    finally:
        monitor.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with xvfb() as (display, _proc):
        player = xdisplay.Display(display)
        root = player.screen().root
        windows = {}
        for name, wm_class in (
            ("user_window", ("xterm", "XTerm")),
            ("console_window", ("deskhand-technician", TECHNICIAN_CONSOLE_CLASS)),
        ):
            window = root.create_window(0, 0, 600, 600, 0, X.CopyFromParent)
            window.set_wm_class(*wm_class)
            windows[name] = window
        windows["user_window"].map()  # on top: the pointer is over it in every case
        windows["console_window"].map()
        windows["user_window"].configure(stack_mode=X.Above)
        player.sync()
        results: dict[str, Any] = {}
        console = (TECHNICIAN_CONSOLE_CLASS,)
        for case, focus, classes, ttl in (
            ("off", windows["user_window"], (), 0.05),
            ("user_window", windows["user_window"], console, 0.05),
            ("console_window", windows["console_window"], console, 0.05),
            ("user_window_uncached", windows["user_window"], console, 0.0),
        ):
            per_event = []
            seen = flagged = 0
            for _ in range(args.rounds):
                spent, seen, flagged = _round(display, player, focus, args.events, classes, ttl)
                per_event.append(spent / max(1, seen) * 1e6)
            results[case] = {
                "us_per_event_p50": round(statistics.median(per_event), 2),
                "us_per_event_min": round(min(per_event), 2),
                "events_seen": seen,
                "flagged": flagged,
            }
        player.close()
    return {
        "bench": "activity",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "events_per_round": args.events,
        "rounds": args.rounds,
        "results": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    print(json.dumps(run(parser.parse_args(argv)), indent=2))


if __name__ == "__main__":
    main()
