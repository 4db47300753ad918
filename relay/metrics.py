"""Counters and gauges for ``/metrics``, in the Prometheus text exposition format.

Pure: the relay bumps counters as things happen and passes its gauges in
when a scrape arrives. Label values are closed sets chosen by the relay
(close code names, results), never peer input, so the output cannot be
injected into and its size is bounded.
"""

from __future__ import annotations

from collections.abc import Mapping


__all__ = ["Metrics"]

_PREFIX = "deskhand_relay_"

_COUNTERS: dict[str, str] = {
    "connections_total": "Websocket connections accepted.",
    "closed_total": "Connections the relay closed, by close code.",
    "forwarded_messages_total": "Forward messages passed between peers.",
    "forwarded_bytes_total": "Bytes of Forward messages passed between peers.",
    "logins_total": "Sign-in attempts, by result.",
    "requests_posted_total": "Help requests posted to the queue.",
    "requests_finished_total": "Help requests that left the queue, by reason.",
    "claims_total": "Successful claims, by kind (code or request).",
    "accounts_cut_off_total": "Connections closed because their account was disabled.",
}

# Counters without labels start at 0 in the output (labelled ones appear when first seen).
_UNLABELLED = ("connections_total", "requests_posted_total", "accounts_cut_off_total")

_GAUGES: dict[str, str] = {
    "connections": "Open websocket connections.",
    "waiting_codes": "Users waiting behind a pairing code.",
    "active_pairs": "Paired connections forwarding to each other.",
    "queued_requests": "Help requests in the queue, by state.",
    "queue_consoles": "Technicians watching the queue.",
    "uptime_seconds": "Seconds since the relay started.",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


class Metrics:
    """The relay's counters.

    Attributes:
        forwarded_messages, forwarded_bytes: kept as plain integers because
            they change on every forwarded frame (the hot path).
    """

    def __init__(self) -> None:
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self.forwarded_messages = 0
        self.forwarded_bytes = 0

    def inc(self, name: str, n: int = 1, **labels: str) -> None:
        """Add ``n`` to a counter (one of the names documented above)."""
        if name not in _COUNTERS:
            raise KeyError(name)
        key = (name, tuple(sorted(labels.items())))
        self._counters[key] = self._counters.get(key, 0) + n

    def value(self, name: str, **labels: str) -> int:
        """A counter's current value (for tests)."""
        if name == "forwarded_messages_total":
            return self.forwarded_messages
        if name == "forwarded_bytes_total":
            return self.forwarded_bytes
        return self._counters.get((name, tuple(sorted(labels.items()))), 0)

    def render(
        self, gauges: Mapping[str, float | Mapping[tuple[tuple[str, str], ...], float]]
    ) -> str:
        """The exposition text: every counter, then the gauges given.

        Args:
            gauges: gauge name -> value, or -> {labels: value} for labelled ones.
        """
        lines: list[str] = []
        series: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = {
            name: [] for name in _COUNTERS
        }
        for (name, labels), count in self._counters.items():
            series[name].append((labels, count))
        series["forwarded_messages_total"].append(((), self.forwarded_messages))
        series["forwarded_bytes_total"].append(((), self.forwarded_bytes))
        for name in _UNLABELLED:
            if not series[name]:
                series[name].append(((), 0))
        for name, help_text in _COUNTERS.items():
            lines.append(f"# HELP {_PREFIX}{name} {help_text}")
            lines.append(f"# TYPE {_PREFIX}{name} counter")
            for labels, value in sorted(series[name]):
                lines.append(f"{_PREFIX}{name}{_labels(labels)} {_number(value)}")
        for name, gauge in gauges.items():
            if name not in _GAUGES:
                raise KeyError(name)
            lines.append(f"# HELP {_PREFIX}{name} {_GAUGES[name]}")
            lines.append(f"# TYPE {_PREFIX}{name} gauge")
            if isinstance(gauge, Mapping):
                for labels, v in sorted(gauge.items()):
                    lines.append(f"{_PREFIX}{name}{_labels(labels)} {_number(v)}")
            else:
                lines.append(f"{_PREFIX}{name} {_number(gauge)}")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))
