"""One participant's periodic work, every 50 ms: feedback upstream, reports, layers, liveness.

Upstream (to the publisher): NACKs for missing video packets, transport-wide congestion control
feedback, keyframe-request retries, and once a second receiver reports with REMB (the maximum
publish rate). Downstream: sender reports for the down tracks and the choice of their layers.
A participant whose transport does not connect in time, or whose media stops, is expired.

`tick` is synchronous and does all of this; `RtcpTimer` owns the asyncio task that calls it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from sfu.clock import now_ms
from sfu.config import SfuConfig
from sfu.downlink import Downlink, Notify
from sfu.ingress import Ingress
from sfu.publisher_layers import PublisherLayers
from sfu.rtcp import build_nack, build_receiver_report, build_remb, build_sdes_cname
from sfu.seq import SEQ_MODULO

logger = logging.getLogger(__name__)

TICK_MS = 50
REPORT_INTERVAL_MS = 1000


class RtcpTransport(Protocol):
    """What the timer needs of the participant's media transport."""

    @property
    def state(self) -> str: ...

    def send_rtcp(self, data: bytes) -> bool: ...


class RtcpTimer:
    """The participant's timer: owns its task (`start`, `close`) and the state between ticks."""

    def __init__(
        self,
        transport: RtcpTransport,
        ingress: Ingress,
        downlink: Downlink,
        config: SfuConfig,
        rtcp_ssrc: int,
        cname: str,
        created_ms: int,
        notify: Notify,
        expire: Callable[[], None],
    ) -> None:
        self._transport = transport
        self._ingress = ingress
        self._downlink = downlink
        self._config = config
        self._rtcp_ssrc = rtcp_ssrc
        self._cname = cname
        self._created_ms = created_ms
        self._notify = notify
        self._expire = expire
        self._publisher_layers = PublisherLayers()
        self._next_report_ms = 0
        self._last_report_ms = 0
        self._task: asyncio.Task[None] | None = None
        self.nacks_sent = 0
        self.tick_errors = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop the task and wait for it; idempotent (and a no-op from inside the task)."""
        task = self._task
        if task is None or task is asyncio.current_task():
            return
        self._task = None
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_MS / 1000)
            try:
                self.tick(now_ms())
            except Exception:  # a bug here must not stop feedback for the whole call
                self.tick_errors += 1
                if self.tick_errors <= 3:
                    logger.exception("participant timer failed")

    def tick(self, now: int) -> None:
        config = self._config
        if self._transport.state != "connected":
            if now - self._created_ms > config.connect_timeout_ms:
                self._expire()
            return
        ingress = self._ingress
        if now - ingress.last_packet_ms > config.media_timeout_ms:
            self._expire()
            return
        send_rtcp = self._transport.send_rtcp
        media_ssrc = 0
        for publication in ingress.publications.values():
            publication.poll_keyframe_request(now)
            for stream in publication.streams.values():
                media_ssrc = media_ssrc or stream.ssrc
                if not stream.is_video:
                    continue  # Opus is not retransmitted; its FEC covers loss
                lost = stream.nack.due(now)
                if lost:
                    self.nacks_sent += 1
                    send_rtcp(
                        build_nack(self._rtcp_ssrc, stream.ssrc, [s % SEQ_MODULO for s in lost])
                    )
        for feedback in ingress.twcc.build_feedback(self._rtcp_ssrc, media_ssrc):
            send_rtcp(feedback)
        self._downlink.allocate_if_due(now)
        if now >= self._next_report_ms:
            interval = now - self._last_report_ms if self._last_report_ms else REPORT_INTERVAL_MS
            self._last_report_ms = now
            self._next_report_ms = now + REPORT_INTERVAL_MS
            for publication in ingress.publications.values():
                for stream in publication.streams.values():
                    stream.measure_bitrate(interval)
            for publication in self._publisher_layers.update(ingress.publications.values(), now):
                self._notify(
                    {
                        "type": "publisher_layers",
                        "track_id": publication.track_id,
                        "active": publication.active_layers,
                    }
                )
            self._send_reports(now)

    def _send_reports(self, now: int) -> None:
        send_rtcp = self._transport.send_rtcp
        blocks = []
        video_ssrcs = []
        for publication in self._ingress.publications.values():
            for stream in publication.streams.values():
                block = stream.report_block(now)
                if block is not None:
                    blocks.append(block)
                    if publication.kind == "video":
                        video_ssrcs.append(stream.ssrc)
        if blocks:
            compound = build_receiver_report(self._rtcp_ssrc, blocks)
            if video_ssrcs:
                compound += build_remb(
                    self._rtcp_ssrc, self._config.max_publish_bitrate_bps, video_ssrcs
                )
            send_rtcp(compound + build_sdes_cname(self._rtcp_ssrc, self._cname))
        for downtrack, report in self._downlink.sender_reports(now):
            cname = downtrack.publication.publisher.cname
            send_rtcp(report + build_sdes_cname(downtrack.ssrc, cname))
