"""The only module that touches aiortc's and aioice's private internals.

aiortc gives the SFU ICE, DTLS and SRTP through its ORTC objects (RTCIceGatherer, RTCIceTransport,
RTCDtlsTransport). The SFU does not use RTCPeerConnection, RTCRtpReceiver or RTCRtpSender: those
decode and encode media, and the SFU only forwards packets. What aiortc has no public API for is
done here:

* choosing the host addresses to gather (aioice always asks the operating system and drops
  loopback): `aioice.ice.get_host_addresses` is wrapped, per asyncio context;
* receiving decrypted RTP/RTCP: `RTCDtlsTransport._handle_rtp_data` / `_handle_rtcp_data`
  are replaced on the instance;
* sending RTP/RTCP synchronously: `RTCDtlsTransport._tx_srtp` protects and the nominated ICE pair
  (`aioice.Connection._nominated`) sends;
* a media fast path: once DTLS is up, SRTP/SRTCP datagrams arriving on the nominated pair's socket
  are unprotected (`RTCDtlsTransport._rx_srtp`) and handed over right in the socket callback
  (`StunProtocol.datagram_received`), skipping aioice's queue and aiortc's receive coroutine.
  STUN (consent checks) and DTLS still take aiortc's path;
* SRTP without pylibsrtp's per-call overhead: `FastSrtp` calls libsrtp (through pylibsrtp's cffi
  binding, `pylibsrtp._binding`) on the session pylibsrtp created (`Session._srtp`), with its own
  preallocated packet buffer and length cell, so protecting a packet allocates only the result.

aiortc is pinned to an exact version; tests/test_aiortc_adapter.py fails loudly when an upgrade
changes any of this.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import aioice.ice
import aiortc
import pylibsrtp
from aiortc import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
)
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

logger = logging.getLogger(__name__)

PINNED_AIORTC_VERSION = "1.16.0"
PINNED_AIOICE_VERSION = "0.13.0"
PINNED_PYLIBSRTP_VERSION = "1.0.0"
_SRTP_BUFFER_SIZE = 1500
_SRTP_MAX_TRAILER = 16 + 128  # SRTP_MAX_TRAILER_LEN, SRTCP adds 4 for its index


def _not_connected(data: bytes, addr: Any) -> None:
    raise RuntimeError("the transport is not connected")


class FastSrtp:
    """Protect/unprotect on an existing pylibsrtp session, without per-call allocation.

    The session keeps its replay and rollover state; this only skips pylibsrtp's Python wrapper.
    Not thread-safe (one event loop owns it), and every result is copied out before returning.
    """

    __slots__ = ("_buffer", "_cdata", "_length", "_session", "_srtp")

    def __init__(self, session: pylibsrtp.Session) -> None:
        self._session = session  # keeps the libsrtp session alive
        self._srtp = session._srtp[0]
        self._cdata = _srtp_ffi.new("char[]", _SRTP_BUFFER_SIZE)
        self._buffer = _srtp_ffi.buffer(self._cdata)
        self._length = _srtp_ffi.new("int *")

    def _process(self, data: bytes, function: Any, trailer: int) -> bytes:
        size = len(data)
        if size > _SRTP_BUFFER_SIZE - trailer:
            raise pylibsrtp.Error("packet is too long")
        self._buffer[0:size] = data
        self._length[0] = size
        if function(self._srtp, self._cdata, self._length):
            raise pylibsrtp.Error("srtp failed")
        return self._buffer[0 : self._length[0]]  # type: ignore[no-any-return]

    def protect(self, data: bytes) -> bytes:
        return self._process(data, _srtp_lib.srtp_protect, _SRTP_MAX_TRAILER)

    def protect_rtcp(self, data: bytes) -> bytes:
        return self._process(data, _srtp_lib.srtp_protect_rtcp, _SRTP_MAX_TRAILER + 4)

    def unprotect(self, data: bytes) -> bytes:
        return self._process(data, _srtp_lib.srtp_unprotect, 0)

    def unprotect_rtcp(self, data: bytes) -> bytes:
        return self._process(data, _srtp_lib.srtp_unprotect_rtcp, 0)


_host_addresses: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "balie_host_addresses", default=None
)
_original_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _host_addresses.get()
    if chosen is None:
        return _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    result = []
    for address in chosen:
        version = ipaddress.ip_address(address).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            result.append(address)
    return result


def install() -> None:
    """Install the address hook once; idempotent."""
    if aioice.ice.get_host_addresses is not _get_host_addresses:
        aioice.ice.get_host_addresses = _get_host_addresses


def check_compatibility() -> None:
    """Raise if aiortc/aioice no longer have what this adapter relies on."""
    if aiortc.__version__ != PINNED_AIORTC_VERSION:
        raise RuntimeError(
            f"aiortc {aiortc.__version__} is installed, the adapter is written for "
            f"{PINNED_AIORTC_VERSION}"
        )
    for name in ("_handle_rtp_data", "_handle_rtcp_data", "_recv_next"):
        if not hasattr(RTCDtlsTransport, name):
            raise RuntimeError(f"RTCDtlsTransport.{name} is gone")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        raise RuntimeError("aioice.ice.get_host_addresses is gone")
    for name in ("srtp_protect", "srtp_unprotect", "srtp_protect_rtcp", "srtp_unprotect_rtcp"):
        if not hasattr(_srtp_lib, name):
            raise RuntimeError(f"pylibsrtp's binding has no {name}")


install()

_certificate: RTCCertificate | None = None


def _shared_certificate() -> RTCCertificate:
    """One DTLS certificate per process: generating one costs milliseconds per participant."""
    global _certificate
    if _certificate is None:
        _certificate = RTCCertificate.generateCertificate()
    return _certificate


RtpHandler = Callable[[bytes, int], None]
RtcpHandler = Callable[[bytes], None]
StateHandler = Callable[[str], None]


class MediaTransport:
    """ICE + DTLS + SRTP for one participant, sending and receiving raw RTP/RTCP.

    States: new -> connecting -> connected -> failed | closed. `on_state` is called on each change.
    """

    def __init__(
        self,
        host_addresses: tuple[str, ...],
        on_rtp: RtpHandler,
        on_rtcp: RtcpHandler,
        on_state: StateHandler,
        *,
        controlling: bool = False,
    ) -> None:
        """`controlling`: the ICE role of the side that made the offer (browsers, test peers)."""
        self._host_addresses = host_addresses
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._on_state = on_state
        self._gatherer = RTCIceGatherer(iceServers=[])
        self._gatherer._connection.ice_controlling = controlling
        self._ice = RTCIceTransport(self._gatherer)
        self._dtls = RTCDtlsTransport(self._ice, [_shared_certificate()])
        self._dtls._handle_rtp_data = self._handle_rtp_data  # type: ignore[method-assign]
        self._dtls._handle_rtcp_data = self._handle_rtcp_data  # type: ignore[method-assign]
        self._connect_task: asyncio.Task[None] | None = None
        self._state = "new"
        self._closed = False
        self._srtp: FastSrtp | None = None
        self._pair: Any = None
        self._sendto: Callable[[bytes, Any], None] = _not_connected
        self._remote_addr: Any = None
        self.packets_sent = 0
        self.bytes_sent = 0
        self.send_errors = 0
        self.receive_errors = 0
        self._fast_path_protocol: Any = None
        self._slow_path: Any = None

    # -- description -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def ice_ufrag(self) -> str:
        return str(self._gatherer.getLocalParameters().usernameFragment)

    @property
    def ice_pwd(self) -> str:
        return str(self._gatherer.getLocalParameters().password)

    @property
    def fingerprint(self) -> tuple[str, str]:
        for fingerprint in self._dtls.getLocalParameters().fingerprints:
            if fingerprint.algorithm == "sha-256":
                return fingerprint.algorithm, fingerprint.value
        first = self._dtls.getLocalParameters().fingerprints[0]
        return first.algorithm, first.value

    async def gather(self) -> list[str]:
        """Gather host candidates on the configured addresses; returns SDP candidate values."""
        token = _host_addresses.set(self._host_addresses)
        try:
            await self._gatherer.gather()
        finally:
            _host_addresses.reset(token)
        return ["candidate:" + candidate_to_sdp(c) for c in self._gatherer.getLocalCandidates()]

    # -- connection --------------------------------------------------------------------------

    async def add_remote_candidate(self, sdp_value: str) -> str:
        """Add a remote candidate ("candidate:..." or without prefix). Returns its address.

        Raises ValueError for a candidate that cannot be parsed. The caller filters addresses.
        """
        text = sdp_value.removeprefix("a=").removeprefix("candidate:")
        candidate = candidate_from_sdp(text)
        if candidate.protocol.lower() != "udp":
            return str(candidate.ip)
        await self._ice.addRemoteCandidate(candidate)
        return str(candidate.ip)

    @staticmethod
    def candidate_address(sdp_value: str) -> tuple[str, str]:
        """(address, protocol) of a candidate line; ValueError when it cannot be parsed."""
        text = sdp_value.removeprefix("a=").removeprefix("candidate:")
        candidate = candidate_from_sdp(text)
        return str(candidate.ip), str(candidate.protocol).lower()

    async def end_of_candidates(self) -> None:
        await self._ice.addRemoteCandidate(None)

    def start(
        self, ice_ufrag: str, ice_pwd: str, fingerprint_algorithm: str, fingerprint: str
    ) -> None:
        """Start ICE and DTLS in a task owned by this transport."""
        if self._connect_task is not None or self._closed:
            return
        parameters = RTCDtlsParameters(
            fingerprints=[RTCDtlsFingerprint(algorithm=fingerprint_algorithm, value=fingerprint)],
            role="auto",
        )
        self._connect_task = asyncio.create_task(
            self._connect(
                RTCIceParameters(usernameFragment=ice_ufrag, password=ice_pwd), parameters
            )
        )

    async def _connect(self, ice: RTCIceParameters, dtls: RTCDtlsParameters) -> None:
        self._set_state("connecting")
        try:
            await self._ice.start(ice)
            if self._ice.state != "completed":
                self._set_state("failed")
                return
            self._dtls.on("statechange", self._dtls_state_changed)
            await self._dtls.start(dtls)
        except asyncio.CancelledError:
            raise
        except Exception:  # aiortc raises various errors on a failed handshake
            logger.warning("media transport failed to connect", exc_info=True)
            self._set_state("failed")
            return
        if self._dtls.state != "connected":
            self._set_state("failed")
            return
        tx_srtp = self._dtls._tx_srtp
        self._pair = self._ice._connection._nominated.get(1)
        if tx_srtp is None or self._pair is None:
            self._set_state("failed")
            return
        self._srtp = FastSrtp(tx_srtp)
        # The nominated pair does not change after connecting (no ICE restarts): the send
        # function and the remote address are looked up once, not per packet.
        self._sendto = self._pair.protocol.transport.sendto
        self._remote_addr = self._pair.remote_addr
        self._ice.on("statechange", self._ice_state_changed)
        self._install_fast_path()
        self._set_state("connected")

    def _install_fast_path(self) -> None:
        """Take SRTP off the nominated socket directly (see the module docstring)."""
        rx_srtp = FastSrtp(self._dtls._rx_srtp)
        protocol = self._pair.protocol
        slow_path = protocol.datagram_received
        on_rtp = self._on_rtp
        on_rtcp = self._on_rtcp
        srtp_error = pylibsrtp.Error

        def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
            if len(data) > 1 and 127 < data[0] < 192 and not self._closed:
                try:
                    if 191 < data[1] < 224:
                        on_rtcp(rx_srtp.unprotect_rtcp(data))
                    else:
                        on_rtp(rx_srtp.unprotect(data), 0)
                except srtp_error:
                    self.receive_errors += 1
                return
            slow_path(data, addr)

        protocol.datagram_received = datagram_received
        self._fast_path_protocol = protocol
        self._slow_path = slow_path

    def _dtls_state_changed(self) -> None:
        if self._dtls.state in ("closed", "failed") and self._state == "connected":
            self._set_state("failed" if self._dtls.state == "failed" else "closed")

    def _ice_state_changed(self) -> None:
        if self._ice.state in ("failed", "closed") and self._state == "connected":
            self._set_state("failed")

    def _set_state(self, state: str) -> None:
        if state == self._state or self._state == "closed":
            return
        self._state = state
        self._on_state(state)

    # -- media -------------------------------------------------------------------------------

    async def _handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        self._on_rtp(data, arrival_time_ms)

    async def _handle_rtcp_data(self, data: bytes) -> None:
        self._on_rtcp(data)

    def send_rtp(self, data: bytes) -> bool:
        """Protect and send one RTP packet now; False when not connected or failed."""
        srtp = self._srtp
        if srtp is None:
            return False
        try:
            protected = srtp.protect(data)
        except pylibsrtp.Error:
            self.send_errors += 1
            return False
        self._sendto(protected, self._remote_addr)
        self.packets_sent += 1
        self.bytes_sent += len(protected)
        return True

    def send_rtcp(self, data: bytes) -> bool:
        srtp = self._srtp
        if srtp is None:
            return False
        try:
            protected = srtp.protect_rtcp(data)
        except pylibsrtp.Error:
            self.send_errors += 1
            return False
        self._sendto(protected, self._remote_addr)
        return True

    async def close(self) -> None:
        """Stop DTLS and ICE; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._srtp = None
        self._pair = None
        if self._fast_path_protocol is not None:
            self._fast_path_protocol.datagram_received = self._slow_path
            self._fast_path_protocol = None
        task = self._connect_task
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            try:
                await task
            except asyncio.CancelledError:
                pass
        try:
            await self._dtls.stop()
        except Exception:
            logger.debug("DTLS stop failed", exc_info=True)
        try:
            await self._ice.stop()
        except Exception:
            logger.debug("ICE stop failed", exc_info=True)
        self._state = "closed"
