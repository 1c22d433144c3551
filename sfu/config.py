"""Configuration of the media server."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
ALL_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)


@dataclass(frozen=True)
class SfuConfig:
    """What the SFU needs to know from the outside.

    rtc_ips: the addresses offered to browsers as ICE host candidates.
    allowed_networks: remote ICE candidates outside these networks are ignored, so the SFU never
    sends a connectivity check where it should not.
    """

    rtc_ips: tuple[str, ...]
    allowed_networks: tuple[IPNetwork, ...]
    disconnect_grace_ms: int = 3000
    media_timeout_ms: int = 8000
    connect_timeout_ms: int = 20000
    max_participants_per_room: int = 32
    max_publish_bitrate_bps: int = 2_500_000
    keyframe_request_interval_ms: int = 500

    def __post_init__(self) -> None:
        if not self.rtc_ips:
            raise ValueError("at least one RTC address is needed (--rtc-ip)")
        for ip in self.rtc_ips:
            ipaddress.ip_address(ip)

    @staticmethod
    def default_rtc_ips() -> tuple[str, ...]:
        """The machine's non-loopback addresses, as a production server needs."""
        # Imported lazily: ifaddr comes with aioice.
        import ifaddr

        found: list[str] = []
        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                if isinstance(ip.ip, str):
                    address = ipaddress.ip_address(ip.ip)
                else:
                    if ip.ip[2]:  # link-local IPv6 with a scope id: not usable for browsers
                        continue
                    address = ipaddress.ip_address(ip.ip[0])
                if address.is_loopback or address.is_link_local:
                    continue
                found.append(str(address))
        if not found:
            found.append("127.0.0.1")
        return tuple(found)

    @staticmethod
    def default_allowed_networks(rtc_ips: tuple[str, ...]) -> tuple[IPNetwork, ...]:
        """Loopback only when every RTC address is loopback, otherwise everything."""
        if all(ipaddress.ip_address(ip).is_loopback for ip in rtc_ips):
            return LOOPBACK_NETWORKS
        return ALL_NETWORKS

    def allows(self, address: str) -> bool:
        """Whether a remote candidate address may be contacted."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # mDNS host names (.local) and garbage are never resolved
        return any(
            ip in network for network in self.allowed_networks if ip.version == network.version
        )
