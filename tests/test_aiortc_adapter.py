"""The adapter relies on aiortc internals: these tests fail loudly if an upgrade moves them."""

import asyncio
import inspect
from importlib.metadata import version

import aioice.ice
import pylibsrtp
import pytest
from aiortc import RTCDtlsTransport, RTCIceGatherer

from sfu import aiortc_adapter
from sfu.aiortc_adapter import (
    PINNED_AIOICE_VERSION,
    PINNED_AIORTC_VERSION,
    PINNED_PYLIBSRTP_VERSION,
    FastSrtp,
    MediaTransport,
)


def test_aiortc_and_aioice_are_the_exact_versions_the_adapter_was_written_for():
    assert version("aiortc") == PINNED_AIORTC_VERSION
    assert version("aioice") == PINNED_AIOICE_VERSION
    aiortc_adapter.check_compatibility()


def _srtp_pair() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    key = bytes(range(30))
    tx = pylibsrtp.Session(
        policy=pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    )
    rx = pylibsrtp.Session(
        policy=pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
    )
    return tx, rx


def _rtp(seq: int, size: int = 1200) -> bytes:
    header = bytes([0x80, 96]) + seq.to_bytes(2, "big") + (1234).to_bytes(4, "big")
    return header + (0x11223344).to_bytes(4, "big") + bytes(range(256)) * (size // 256)


def test_pylibsrtp_is_the_exact_version_and_keeps_the_session_where_fast_srtp_looks():
    assert version("pylibsrtp") == PINNED_PYLIBSRTP_VERSION
    source = inspect.getsource(pylibsrtp.Session)
    assert "self._srtp = ffi.gc(srtp" in source
    assert "func(self._srtp[0], self._cdata, len_p)" in source


def test_fast_srtp_protects_exactly_like_pylibsrtp_and_round_trips():
    tx_reference, _ = _srtp_pair()
    tx, rx = _srtp_pair()
    fast_tx, fast_rx = FastSrtp(tx), FastSrtp(rx)
    for seq in range(5):
        packet = _rtp(seq)
        protected = fast_tx.protect(packet)
        assert protected == tx_reference.protect(packet)
        assert fast_rx.unprotect(protected) == packet
    rtcp = bytes([0x80, 200, 0, 6]) + bytes(24)
    assert fast_rx.unprotect_rtcp(fast_tx.protect_rtcp(rtcp)) == rtcp


def test_fast_srtp_rejects_a_replayed_or_tampered_packet_and_a_too_long_one():
    tx, rx = _srtp_pair()
    fast_tx, fast_rx = FastSrtp(tx), FastSrtp(rx)
    protected = fast_tx.protect(_rtp(1))
    fast_rx.unprotect(protected)
    with pytest.raises(pylibsrtp.Error):
        fast_rx.unprotect(protected)  # replay
    tampered = bytearray(fast_tx.protect(_rtp(2)))
    tampered[40] ^= 1
    with pytest.raises(pylibsrtp.Error):
        fast_rx.unprotect(bytes(tampered))
    with pytest.raises(pylibsrtp.Error):
        fast_tx.protect(bytes(1400))


def test_the_dtls_transport_still_routes_decrypted_packets_through_the_replaced_methods():
    source = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "self._rx_srtp.unprotect(data)" in source
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in source
    assert "await self._handle_rtcp_data(data)" in source
    assert "self._tx_srtp" in inspect.getsource(RTCDtlsTransport._send_rtp)


def test_aioice_still_routes_datagrams_through_the_protocol_callback_the_fast_path_replaces():
    source = inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    assert "self.receiver.data_received(data" in source
    assert "_rx_srtp" in inspect.getsource(RTCDtlsTransport._setup_srtp)


def test_aioice_still_gathers_host_addresses_through_the_wrapped_module_function():
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    assert "get_host_addresses(" in source
    assert aioice.ice.get_host_addresses is aiortc_adapter._get_host_addresses
    assert "_nominated" in inspect.getsource(aioice.ice.Connection.sendto)


def test_the_ice_gatherer_keeps_its_aioice_connection_where_the_adapter_looks():
    gatherer = RTCIceGatherer(iceServers=[])
    assert isinstance(gatherer._connection, aioice.ice.Connection)
    assert gatherer._connection.ice_controlling is False


@pytest.mark.media
async def test_gathering_offers_exactly_the_configured_addresses():
    transport = MediaTransport(("127.0.0.1",), lambda d, t: None, lambda d: None, lambda s: None)
    try:
        candidates = await transport.gather()
    finally:
        await transport.close()
    assert candidates and all(" 127.0.0.1 " in c for c in candidates)
    assert all(c.startswith("candidate:") for c in candidates)


async def test_gathering_elsewhere_in_the_process_is_not_affected():
    seen = aiortc_adapter._host_addresses.get()
    assert seen is None


@pytest.mark.media
async def test_two_transports_connect_and_carry_rtp_and_rtcp_both_ways():
    received: dict[str, list[bytes]] = {"a": [], "b": []}
    states: dict[str, list[str]] = {"a": [], "b": []}

    def make(name: str, controlling: bool) -> MediaTransport:
        return MediaTransport(
            ("127.0.0.1",),
            lambda data, t: received[name].append(data),
            lambda data: received[name].append(data),
            lambda state: states[name].append(state),
            controlling=controlling,
        )

    a, b = make("a", True), make("b", False)
    try:
        a_candidates, b_candidates = await a.gather(), await b.gather()
        for candidate in b_candidates:
            await a.add_remote_candidate(candidate)
        for candidate in a_candidates:
            await b.add_remote_candidate(candidate)
        await a.end_of_candidates()
        await b.end_of_candidates()
        a.start(b.ice_ufrag, b.ice_pwd, *b.fingerprint)
        b.start(a.ice_ufrag, a.ice_pwd, *a.fingerprint)
        async with asyncio.timeout(10):
            while a.state != "connected" or b.state != "connected":
                await asyncio.sleep(0.02)
        from sfu.rtcp import build_pli
        from tests.packets import rtp

        # The fast path hands media over from the socket: aiortc's receive loop sees none.
        slow_path_calls: list[bytes] = []

        async def slow_path(data: bytes, arrival_time_ms: int) -> None:
            slow_path_calls.append(data)

        b._dtls._handle_rtp_data = slow_path  # type: ignore[method-assign]
        assert a.send_rtp(rtp(1, payload=b"hello"))
        assert b.send_rtcp(build_pli(1, 2))
        async with asyncio.timeout(5):
            while not received["b"] or not received["a"]:
                await asyncio.sleep(0.01)
        assert received["b"][0].endswith(b"hello")
        assert slow_path_calls == []
        assert received["a"][0] == build_pli(1, 2)
    finally:
        await a.close()
        await b.close()
        await a.close()  # idempotent
    assert states["a"][:2] == ["connecting", "connected"]
    assert not a.send_rtp(b"x" * 20)


def test_rtc_addresses_must_be_ip_addresses():
    from sfu.config import SfuConfig

    with pytest.raises(ValueError):
        SfuConfig(rtc_ips=("not-an-ip",), allowed_networks=())
