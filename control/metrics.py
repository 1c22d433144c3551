"""Prometheus metrics for operators: ``GET /metrics`` (needs the API key).

Everything lives in a registry of the application's own, never in prometheus_client's global
default registry, so that several applications (tests, later one SFU worker per core) never share
or clash. The SFU's counters and gauges are read when Prometheus scrapes: nothing here runs per
packet. Every family has a ``worker`` label so that dashboards can sum over workers.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from control.apispec import API_KEY, RawResponse, RouteTable
from control.sfu_types import SfuLike

DEFAULT_WORKER = "0"

# Seconds between two wake-ups of the event-loop lag probe.
LAG_INTERVAL_SECONDS = 0.1
# `balie_event_loop_lag_max_seconds` is the largest lag seen in this many seconds.
LAG_WINDOW_SECONDS = 10.0
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LAG_TASK_NAME = "balie-event-loop-lag"

# (gauges() key, metric name, help text)
_GAUGES = (
    ("rooms", "balie_rooms", "Rooms with at least one participant in the SFU."),
    ("participants", "balie_participants", "Participants connected to the SFU."),
    ("published_tracks", "balie_published_tracks", "Tracks participants publish to the SFU."),
    ("subscribed_tracks", "balie_subscribed_tracks", "Tracks the SFU forwards to participants."),
)

# (MediaCounters attribute, metric name, help text)
_COUNTERS = (
    ("packets_in", "balie_packets_in_total", "RTP packets received from publishers."),
    ("bytes_in", "balie_bytes_in_total", "RTP bytes received from publishers."),
    ("rtx_packets_in", "balie_rtx_packets_in_total", "RTX (retransmission) packets received."),
    ("packets_out", "balie_packets_out_total", "RTP packets forwarded to subscribers."),
    ("bytes_out", "balie_bytes_out_total", "RTP bytes forwarded to subscribers."),
    ("retransmissions", "balie_retransmissions_total", "Packets resent to subscribers on NACK."),
    ("nacks_received", "balie_nacks_received_total", "NACKs received from subscribers."),
    ("nacks_sent", "balie_nacks_sent_total", "NACKs sent to publishers."),
    ("keyframe_requests", "balie_keyframe_requests_total", "Keyframe requests sent to publishers."),
    ("layer_switches", "balie_layer_switches_total", "Simulcast layer switches of subscribers."),
)

DROPPED_NAME = "balie_packets_dropped_total"


class MediaCollector:
    """The SFU's gauges and counters, read from `sfu.gauges()` and `sfu.counters()` per scrape."""

    def __init__(self, sfu: SfuLike, worker: str) -> None:
        self._sfu = sfu
        self._worker = worker

    def describe(self) -> Iterable[Metric]:
        return self._families()[0]

    def collect(self) -> Iterable[Metric]:
        families, gauges, counters, dropped = self._families()
        values = self._sfu.gauges()
        for key, gauge in gauges.items():
            gauge.add_metric([self._worker], values.get(key, 0))
        totals = self._sfu.counters()
        for attribute, counter in counters.items():
            counter.add_metric([self._worker], getattr(totals, attribute))
        for reason, count in sorted(totals.dropped.items()):
            dropped.add_metric([self._worker, reason], count)
        return families

    @staticmethod
    def _families() -> tuple[
        list[Metric],
        dict[str, GaugeMetricFamily],
        dict[str, CounterMetricFamily],
        CounterMetricFamily,
    ]:
        gauges = {
            key: GaugeMetricFamily(name, help_text, labels=["worker"])
            for key, name, help_text in _GAUGES
        }
        counters = {
            attribute: CounterMetricFamily(name, help_text, labels=["worker"])
            for attribute, name, help_text in _COUNTERS
        }
        dropped = CounterMetricFamily(
            DROPPED_NAME, "Packets the SFU did not forward, by reason.", labels=["worker", "reason"]
        )
        families: list[Metric] = [*gauges.values(), *counters.values(), dropped]
        return families, gauges, counters, dropped


def resident_memory_bytes() -> int | None:
    """The resident set size of this process, from /proc/self/statm; None where there is none."""
    try:
        fields = Path("/proc/self/statm").read_text(encoding="ascii").split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


class WorkerCollector:
    """CPU time and memory of this process and, with worker processes, of each worker."""

    def __init__(self, worker: str, sfu: object = None) -> None:
        self._worker = worker
        self._sfu = sfu

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        cpu, memory = self._families()
        cpu.add_metric([self._worker], time.process_time())
        rss = resident_memory_bytes()
        if rss is not None:
            memory.add_metric([self._worker], rss)
        usage = getattr(self._sfu, "worker_usage", None)
        if callable(usage):
            for label, cpu_seconds, worker_rss in usage():
                cpu.add_metric([label], cpu_seconds)
                if worker_rss is not None:
                    memory.add_metric([label], worker_rss)
        return [cpu, memory]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(
                "balie_worker_cpu_seconds_total",
                "CPU time (user and system) this worker process has used.",
                labels=["worker"],
            ),
            GaugeMetricFamily(
                "balie_worker_resident_memory_bytes",
                "Resident memory of this worker process.",
                labels=["worker"],
            ),
        )


class EventLoopLag:
    """How late the event loop runs a callback: a probe sleeps `interval` seconds in a loop.

    Each wake-up's delay goes into a histogram; `collect` reports the largest delay of the last
    `window` seconds as a gauge.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        worker: str,
        *,
        interval: float = LAG_INTERVAL_SECONDS,
        window: float = LAG_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.window = window
        self._worker = worker
        self._clock = clock
        self._recent: deque[tuple[float, float]] = deque()
        self._histogram = Histogram(
            "balie_event_loop_lag_seconds",
            "How much later than planned the event loop woke up a sleeping task.",
            labelnames=["worker"],
            buckets=LAG_BUCKETS,
            registry=registry,
        ).labels(worker=worker)

    def record(self, lag: float, now: float) -> None:
        self._histogram.observe(lag)
        self._recent.append((now, lag))
        self._forget_before(now - self.window)

    def max_lag(self, now: float) -> float:
        self._forget_before(now - self.window)
        return max((lag for _, lag in self._recent), default=0.0)

    def _forget_before(self, oldest: float) -> None:
        while self._recent and self._recent[0][0] < oldest:
            self._recent.popleft()

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            start = self._clock()
            await asyncio.sleep(self.interval)
            now = self._clock()
            # Timers may fire a clock tick early: never record a negative lag.
            self.record(max(0.0, now - start - self.interval), now)

    def describe(self) -> Iterable[Metric]:
        return [self._max_family()]

    def collect(self) -> Iterable[Metric]:
        family = self._max_family()
        family.add_metric([self._worker], self.max_lag(self._clock()))
        return [family]

    def _max_family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "balie_event_loop_lag_max_seconds",
            f"The largest event-loop lag seen in the last {self.window:g} seconds.",
            labels=["worker"],
        )


class Metrics:
    """One application's metrics: its registry and the task that probes the event loop."""

    def __init__(self, sfu: SfuLike, *, worker: str = DEFAULT_WORKER) -> None:
        if callable(getattr(sfu, "worker_usage", None)):
            # Worker processes report under their own labels; this process is the control plane
            # and the media figures are the sum over the workers.
            worker = "control"
        self.worker = worker
        self.registry = CollectorRegistry()
        self.registry.register(MediaCollector(sfu, worker))
        self.registry.register(WorkerCollector(worker, sfu))
        self.lag = EventLoopLag(self.registry, worker)
        self.registry.register(self.lag)
        self.lag_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.lag_task is None:
            self.lag_task = asyncio.create_task(self.lag.run(), name=LAG_TASK_NAME)

    async def stop(self) -> None:
        task, self.lag_task = self.lag_task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # stop() itself was cancelled, not only the probe

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


METRICS_KEY = web.AppKey("metrics", Metrics)


async def _metrics_context(app: web.Application) -> AsyncIterator[None]:
    metrics = app[METRICS_KEY]
    metrics.start()
    try:
        yield
    finally:
        await metrics.stop()


routes = RouteTable(tag="operations")


@routes.get(
    "/metrics",
    security=API_KEY,
    operation_id="getMetrics",
    summary="Prometheus metrics of the SFU, its workers and the event loop",
    returns="Prometheus text exposition format.",
    raw=RawResponse("text/plain", {"type": "string"}),
)
async def metrics_handler(request: web.Request) -> web.StreamResponse:
    body = request.app[METRICS_KEY].exposition()
    return web.Response(
        body=body,
        headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
    )


def setup_metrics(app: web.Application, sfu: SfuLike, *, worker: str = DEFAULT_WORKER) -> Metrics:
    """Add ``GET /metrics`` and the event-loop probe (runs from startup until cleanup)."""
    metrics = Metrics(sfu, worker=worker)
    app[METRICS_KEY] = metrics
    routes.add_to(app)
    app.cleanup_ctx.append(_metrics_context)
    return metrics
