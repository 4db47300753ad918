"""The relay's metrics, exposed with ``prometheus_client``.

Each relay has its own :class:`~prometheus_client.CollectorRegistry` (tests
run many relays in one process). What is in it:

* counters: connections, closes by close code, refusals by reason, Forward
  messages and bytes, sign-ins by result, requests posted and finished,
  claims by kind, account cut-offs;
* histograms: ``pairing_seconds`` (from a code's registration or a
  request's post to its claim) and ``forward_delay_seconds`` (from a
  Forward message's arrival to the end of its write to the partner:
  what the relay adds, back-pressure included);
* gauges read at scrape time (connections, waiting codes, pairs, queue,
  pending handshakes, buffered bytes, uptime);
* the process metrics (CPU, memory, open file descriptors) and Python's GC
  and platform collectors.

Label values are closed sets fixed here (close code names, results,
reasons); a value outside its set is counted as ``other``, so peer input can
never create series. The Forward counters are plain integers on the hot path
and are read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    exposition,
    gc_collector,
    platform_collector,
    process_collector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.protocol.relay_wire import CloseCode


__all__ = ["CONTENT_TYPE", "REFUSAL_REASONS", "Metrics", "refusal_reason"]

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST
_PREFIX = "deskhand_relay"

_CODES = frozenset(c.name for c in CloseCode)
_LOGIN_RESULTS = frozenset({"ok", *(c.name.lower() for c in CloseCode)})

# Refusals whose close code is shared by several limits, told apart by the
# start of their (relay-written) reason.
_BY_PREFIX: tuple[tuple[CloseCode, str, str], ...] = (
    (CloseCode.RATE_LIMITED, "too many requests from this address", "address_rate"),
    (CloseCode.RATE_LIMITED, "too many requests from this account", "account_rate"),
    (CloseCode.RATE_LIMITED, "this account made too many claims", "account_claims"),
    (CloseCode.RATE_LIMITED, "too many failed sign-ins", "address_login_failures"),
    (CloseCode.RATE_LIMITED, "too many claims from this address", "address_claims"),
    (CloseCode.RATE_LIMITED, "too many codes waiting", "address_waiting_codes"),
    (CloseCode.RATE_LIMITED, "too many codes asked", "address_registrations"),
    (CloseCode.RATE_LIMITED, "too many open requests", "address_requests"),
    (CloseCode.LOCKED_OUT, "too many failed sign-ins", "sign_in_lockout"),
    (CloseCode.LOCKED_OUT, "too many failed claims", "claim_lockout"),
    (CloseCode.TOO_MANY_CONNECTIONS, "relay is at its connection limit", "connections_total"),
    (CloseCode.TOO_MANY_CONNECTIONS, "too many connections from", "connections_per_address"),
)
# Refusals made before a connection has a handler (relay.guard).
_GUARD_REASONS = ("handshakes", "buffer_total")
_NOT_REFUSALS = frozenset({CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.PEER_LEFT})
REFUSAL_REASONS = frozenset(
    {
        *(r for _, _, r in _BY_PREFIX),
        *_GUARD_REASONS,
        *(c.name.lower() for c in CloseCode if c not in _NOT_REFUSALS),
        "other",
    }
)
_FINISH_REASONS = frozenset({"started", "cancelled", "expired"})
_CLAIM_KINDS = frozenset({"code", "request"})
_PAIRING_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
_DELAY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5)


def refusal_reason(code: CloseCode, reason: str) -> str:
    """The refusal label (a closed set) of a close for ``code`` with ``reason``."""
    for known, prefix, label in _BY_PREFIX:
        if code is known and reason.startswith(prefix):
            return label
    label = code.name.lower()
    return label if label in REFUSAL_REASONS else "other"


def _closed(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


class _Live(Collector):
    """Values read when a scrape arrives: the hot-path counters and the gauges."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        yield CounterMetricFamily(
            f"{_PREFIX}_forwarded_messages",
            "Forward messages passed between peers.",
            value=m.forwarded_messages,
        )
        yield CounterMetricFamily(
            f"{_PREFIX}_forwarded_bytes",
            "Bytes of Forward messages passed between peers.",
            value=m.forwarded_bytes,
        )
        for name, (help_text, value) in m.gauges().items():
            if isinstance(value, Mapping):
                (label,) = {k for key in value for k, _ in key} or {"state"}
                family = GaugeMetricFamily(f"{_PREFIX}_{name}", help_text, labels=[label])
                for key, v in sorted(value.items()):
                    family.add_metric([v2 for _, v2 in key], v)
                yield family
            else:
                yield GaugeMetricFamily(f"{_PREFIX}_{name}", help_text, value=value)


Gauges = Mapping[str, tuple[str, float | Mapping[tuple[tuple[str, str], ...], float]]]


class Metrics:
    """The relay's counters and histograms, and a source for its gauges.

    Attributes:
        registry: what ``/metrics`` renders.
        forwarded_messages, forwarded_bytes: plain integers bumped on every
            forwarded frame (the hot path), read at scrape time.
        gauges: called at scrape time for ``name -> (help, value)``, where a
            value may be ``{((label, value),): number}``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.forwarded_messages = 0
        self.forwarded_bytes = 0
        self.gauges: Callable[[], Gauges] = dict
        r = self.registry
        self._counters: dict[str, tuple[Counter, str, frozenset[str]]] = {}
        for name, help_text, label, allowed in (
            ("connections_total", "Websocket connections accepted.", "", frozenset()),
            ("closed_total", "Connections the relay closed, by close code.", "code", _CODES),
            ("refusals_total", "Refusals, by reason.", "reason", REFUSAL_REASONS),
            ("logins_total", "Sign-in attempts, by result.", "result", _LOGIN_RESULTS),
            ("requests_posted_total", "Help requests posted to the queue.", "", frozenset()),
            (
                "requests_finished_total",
                "Help requests that left the queue, by reason.",
                "reason",
                _FINISH_REASONS,
            ),
            ("claims_total", "Successful claims, by kind (code or request).", "kind", _CLAIM_KINDS),
            (
                "accounts_cut_off_total",
                "Connections closed because their account was disabled.",
                "",
                frozenset(),
            ),
        ):
            # connections_total would clash with the connections gauge.
            family = "connections_accepted" if name == "connections_total" else name
            counter = Counter(
                f"{_PREFIX}_{family.removesuffix('_total')}",
                help_text,
                [label] if label else [],
                registry=r,
            )
            self._counters[name] = (counter, label, allowed)
        self._pairing = Histogram(
            f"{_PREFIX}_pairing_seconds",
            "Seconds from a code's registration or a request's post to its claim.",
            ["kind"],
            buckets=_PAIRING_BUCKETS,
            registry=r,
        )
        self._delay = Histogram(
            f"{_PREFIX}_forward_delay_seconds",
            "Seconds from a Forward message's arrival to the end of its write to the partner.",
            buckets=_DELAY_BUCKETS,
            registry=r,
        )
        r.register(_Live(self))
        process_collector.ProcessCollector(namespace=_PREFIX, registry=r)
        platform_collector.PlatformCollector(registry=r)
        gc_collector.GCCollector(registry=r)

    def inc(self, name: str, n: int = 1, **labels: str) -> None:
        """Add ``n`` to a counter (one of the names above); labels outside their set are 'other'."""
        counter, label, allowed = self._counters[name]
        if label:
            (value,) = labels.values()
            counter.labels(_closed(value, allowed)).inc(n)
        else:
            counter.inc(n)

    def refused(self, reason: str) -> None:
        """Count a refusal by its label (see :func:`refusal_reason`)."""
        self._counters["refusals_total"][0].labels(_closed(reason, REFUSAL_REASONS)).inc()

    def refusal(self, code: CloseCode, reason: str) -> None:
        """Count a refusal closing with ``code`` and ``reason`` (normal ends are not counted)."""
        if code not in _NOT_REFUSALS:
            self.refused(refusal_reason(code, reason))

    def observe_pairing(self, kind: str, seconds: float) -> None:
        self._pairing.labels(_closed(kind, _CLAIM_KINDS)).observe(max(0.0, seconds))

    def observe_forward(self, seconds: float) -> None:
        self._delay.observe(max(0.0, seconds))

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (for tests)."""
        if name == "forwarded_messages_total":
            return self.forwarded_messages
        if name == "forwarded_bytes_total":
            return self.forwarded_bytes
        family = "connections_accepted" if name == "connections_total" else name
        got = self.registry.get_sample_value(
            f"{_PREFIX}_{family.removesuffix('_total')}_total", labels
        )
        return got or 0

    def render(self) -> bytes:
        """The exposition text (Prometheus text format 0.0.4)."""
        return exposition.generate_latest(self.registry)
