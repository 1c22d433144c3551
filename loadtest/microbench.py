"""Micro-benchmark of the forwarding path: CPU per forwarded packet, without sockets or SRTP.

It drives the real packet path of a publisher whose video is subscribed by N down tracks whose sink
only counts: `Ingress.on_rtp` → `PublishedStream.deliver` → `DownTrack.forward` → the sink.
`python -m loadtest.microbench` prints µs per forwarded packet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from sfu.config import LOOPBACK_NETWORKS, SfuConfig
from sfu.participant import Participant
from sfu.publication import Publication
from sfu.rtp import build_rtp
from sfu.sdp import DEFAULT_VP8
from sfu.speaker import ActiveSpeakerDetector


class CountingSink:
    def __init__(self) -> None:
        self.packets = 0

    def send_rtp(self, data: bytes) -> bool:
        self.packets += 1
        return True


class NoRoom:
    def __init__(self) -> None:
        self.speaker = ActiveSpeakerDetector()

    def spawn(self, coroutine: Any) -> None:  # pragma: no cover - not reached
        coroutine.close()


def vp8_packets(count: int, ssrc: int, size: int = 1200, payload_type: int = 96) -> list[bytes]:
    packets = []
    for index in range(count):
        first_of_frame = index % 4 == 0
        descriptor = bytes([0x90 if first_of_frame else 0x80, 0x80, 0x80, index & 0xFF])
        header = bytes([0x00 if index == 0 else 0x01]) if first_of_frame else b""
        payload = descriptor + header + bytes(size - 12 - len(descriptor) - len(header))
        packets.append(
            build_rtp(
                payload_type=payload_type,
                seq=index & 0xFFFF,
                timestamp=(index // 4) * 3000,
                ssrc=ssrc,
                payload=payload,
                marker=index % 4 == 3,
            )
        )
    return packets


async def measure(subscribers: int, packets: int, rounds: int) -> dict[str, float]:
    config = SfuConfig(rtc_ips=("127.0.0.1",), allowed_networks=LOOPBACK_NETWORKS)
    publisher = Participant(NoRoom(), "pub", "pub", "employee", _no_send, config)  # type: ignore[arg-type]
    publication = Publication(
        publisher, "video", "video", "1", DEFAULT_VP8.payload_type, 90000, 500
    )
    ssrc = 0x1234
    publisher.ingress.add_publication(publication, [ssrc])
    sinks = []
    participants = [publisher]
    for index in range(subscribers):
        subscriber = Participant(NoRoom(), f"s{index}", "s", "resident", _no_send, config)  # type: ignore[arg-type]
        participants.append(subscriber)
        subscriber.negotiation.answer_sent()  # as if its page had offered nothing
        downtrack = subscriber.subscribe(publication)
        sink = CountingSink()
        downtrack.sink = sink
        downtrack.active = True
        sinks.append(sink)
    data = vp8_packets(packets * rounds, ssrc)
    on_rtp = publisher.ingress.on_rtp
    start = time.process_time()
    for packet in data:
        on_rtp(packet, 0)
    cpu = time.process_time() - start
    forwarded = sum(sink.packets for sink in sinks)
    for participant in participants:
        await participant.transport.close()
    return {
        "subscribers": subscribers,
        "packets_in": len(data),
        "packets_forwarded": forwarded,
        "us_per_forwarded_packet": cpu * 1e6 / max(1, forwarded),
        "us_per_incoming_packet": cpu * 1e6 / len(data),
    }


async def _no_send(message: dict[str, object]) -> None:
    return None


async def run(subscriber_counts: list[int], packets: int, rounds: int) -> list[dict[str, float]]:
    results = []
    for count in subscriber_counts:
        best = None
        for _ in range(5):
            result = await measure(count, packets, rounds)
            if best is None or result["us_per_forwarded_packet"] < best["us_per_forwarded_packet"]:
                best = result
        assert best is not None
        results.append(best)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--packets", type=int, default=4000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", metavar="FILE", help="write the results as a Markdown table")
    args = parser.parse_args()
    results = asyncio.run(run(args.subscribers, args.packets, 1))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    if args.markdown:
        lines = [
            "| subscribers | µs CPU per forwarded packet | µs CPU per incoming packet |",
            "|---:|---:|---:|",
        ]
        for result in results:
            lines.append(
                f"| {int(result['subscribers'])} | {result['us_per_forwarded_packet']:.2f} "
                f"| {result['us_per_incoming_packet']:.2f} |"
            )
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    for result in results:
        print(
            f"{int(result['subscribers']):>3} subscribers: "
            f"{result['us_per_forwarded_packet']:.2f} µs per forwarded packet, "
            f"{result['us_per_incoming_packet']:.2f} µs per incoming packet"
        )


if __name__ == "__main__":
    main()
