import os

import pytest

from common.ports import free_port


def _only_loopback() -> bool:
    """True inside a network namespace that has nothing but loopback."""
    try:
        import ifaddr
    except ImportError:  # pragma: no cover
        return False
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            if address not in ("127.0.0.1", "::1"):
                return False
    return True


def pytest_collection_modifyitems(config, items):
    """Media tests need a loopback-only network namespace (make test provides one)."""
    if _only_loopback():
        return
    if os.environ.get("BALIE_REQUIRE_NAMESPACE") == "1":
        pytest.exit("make test must run the suite in a loopback-only network namespace", 3)
    skip = pytest.mark.skip(reason="media tests run only in a loopback-only namespace (make test)")
    for item in items:
        if "media" in item.keywords or "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def unused_tcp_port() -> int:
    return free_port()
