"""Settings and on-disk secrets.

Secrets live in ``<data_dir>/secrets`` (directory mode 0700, files mode 0600). They are generated
once and reused on every start. Secret values are never logged or printed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from control.theme import Theme, load_theme

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ENV_DATA_DIR = "BALIE_DATA_DIR"
ENV_API_KEY = "BALIE_API_KEY"
ENV_BASE_URL = "BALIE_BASE_URL"
ENV_RECORDING_KEY = "BALIE_RECORDING_KEY"
ENV_MANDATORY_RECORDING = "BALIE_MANDATORY_RECORDING_CASE_TYPES"

DEFAULT_HOST = "127.0.0.1"
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = Path("data")

SECRET_BYTES = 32
MIN_API_KEY_LENGTH = 16


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """`BALIE_DATA_DIR` if set, else ``./data``."""
    env = os.environ if env is None else env
    value = env.get(ENV_DATA_DIR, "").strip()
    return Path(value) if value else DEFAULT_DATA_DIR


def secrets_dir(data_dir: Path) -> Path:
    return data_dir / "secrets"


def token_secret_path(data_dir: Path) -> Path:
    return secrets_dir(data_dir) / "token_secret"


def api_key_path(data_dir: Path) -> Path:
    return secrets_dir(data_dir) / "api_key"


def load_or_create_secret(path: Path, *, nbytes: int = SECRET_BYTES) -> str:
    """Return the secret stored in `path`, creating it (random bytes, hex) if it does not exist.

    The file is created with mode 0600 and its directory with mode 0700. Creation is atomic: the
    secret is written to a temporary file which is then hard-linked into place, so two processes
    starting at the same time end up with the same secret and nobody ever reads a half-written
    file.
    """
    existing = _read_secret(path)
    if existing is not None:
        return existing
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    value = secrets.token_hex(nbytes)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            # Someone else created it in the meantime: theirs wins.
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    stored = _read_secret(path)
    if stored is None:  # pragma: no cover - removed between link and read
        raise RuntimeError(f"secret file {path} disappeared while it was created")
    return stored


def _read_secret(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("secret file %s is accessible by other users; run: chmod 600 %s", path, path)
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"secret file {path} is empty; delete it to generate a new one")
    return value


def recording_key_path(data_dir: Path) -> Path:
    return secrets_dir(data_dir) / "recording_key"


def load_recording_key(data_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """The AES-256 key for recordings at rest, as 64 hex digits.

    From `BALIE_RECORDING_KEY` when set (e.g. from the municipality's key management), else from
    ``<data_dir>/secrets/recording_key`` (created once). Losing it makes recordings unreadable.
    """
    env = os.environ if env is None else env
    value = env.get(ENV_RECORDING_KEY, "").strip() or load_or_create_secret(
        recording_key_path(data_dir)
    )
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError("the recording key must be 64 hexadecimal digits (32 bytes)")
    return value


def parse_case_types(value: str) -> frozenset[str]:
    """A comma-separated list of case types (empty entries ignored)."""
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def load_token_secret(data_dir: Path) -> str:
    return load_or_create_secret(token_secret_path(data_dir))


def load_api_key(data_dir: Path, env: Mapping[str, str] | None = None) -> tuple[str, Path | None]:
    """The admin API key and the file it is stored in (None when it comes from `BALIE_API_KEY`)."""
    env = os.environ if env is None else env
    from_env = env.get(ENV_API_KEY, "").strip()
    if from_env:
        if len(from_env) < MIN_API_KEY_LENGTH:
            raise ValueError(f"{ENV_API_KEY} must be at least {MIN_API_KEY_LENGTH} characters long")
        return from_env, None
    path = api_key_path(data_dir)
    return load_or_create_secret(path), path


def url_host(host: str) -> str:
    """`host` as it appears in a URL: wildcard addresses become 127.0.0.1, IPv6 gets brackets."""
    if host in WILDCARD_HOSTS:
        return "127.0.0.1"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def default_base_url(host: str, port: int) -> str:
    return f"http://{url_host(host)}:{port}"


def normalise_base_url(url: str) -> str:
    """Check that `url` is an absolute http(s) URL without query or fragment; drop a trailing /."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL must start with http:// or https:// and name a host: {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"base URL must not have a query or fragment: {url!r}")
    return url.strip().rstrip("/")


@dataclass(kw_only=True)
class Settings:
    """Everything the control plane needs. Secrets are excluded from ``repr``."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    rtc_ips: tuple[str, ...] = ()
    allowed_networks: tuple[IPNetwork, ...] = ()
    api_key: str = field(repr=False)
    token_secret: str = field(repr=False)
    base_url: str
    # Where the API key is stored; None when it came from the environment.
    api_key_file: Path | None = None
    recording_key: str = field(default="", repr=False)
    # Case types the law makes recording mandatory for: no consent needed to start.
    mandatory_recording_case_types: frozenset[str] = frozenset()
    # The municipality's own design tokens on the pages (`--theme-css`); None: the default theme.
    theme: Theme | None = None

    @classmethod
    def load(
        cls,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        data_dir: Path | None = None,
        rtc_ips: tuple[str, ...] = (),
        allowed_networks: tuple[IPNetwork, ...] = (),
        base_url: str | None = None,
        env: Mapping[str, str] | None = None,
        mandatory_recording_case_types: frozenset[str] | None = None,
        theme_css: Path | None = None,
        theme_class: str | None = None,
    ) -> Settings:
        """Build settings, reading (or creating) the secrets in the data directory."""
        env = os.environ if env is None else env
        data_dir = (data_dir if data_dir is not None else default_data_dir(env)).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        api_key, api_key_file = load_api_key(data_dir, env)
        if base_url is None:
            base_url = env.get(ENV_BASE_URL, "").strip() or default_base_url(host, port)
        return cls(
            host=host,
            port=port,
            data_dir=data_dir,
            rtc_ips=rtc_ips,
            allowed_networks=allowed_networks,
            api_key=api_key,
            token_secret=load_token_secret(data_dir),
            base_url=normalise_base_url(base_url),
            api_key_file=api_key_file,
            recording_key=load_recording_key(data_dir, env),
            mandatory_recording_case_types=(
                mandatory_recording_case_types
                if mandatory_recording_case_types is not None
                else parse_case_types(env.get(ENV_MANDATORY_RECORDING, ""))
            ),
            theme=load_theme(theme_css, theme_class) if theme_css is not None else None,
        )
