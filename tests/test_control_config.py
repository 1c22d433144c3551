"""Secrets on disk and settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from control.config import (
    ENV_API_KEY,
    ENV_DATA_DIR,
    Settings,
    api_key_path,
    default_data_dir,
    load_or_create_secret,
    normalise_base_url,
    token_secret_path,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_is_created_once_with_mode_0600_in_a_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "token_secret"
    first = load_or_create_secret(path)
    assert len(first) == 64 and int(first, 16) >= 0  # 32 random bytes, hex
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert load_or_create_secret(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["token_secret"]  # no temp files left


def test_existing_secret_file_is_reused_as_is(tmp_path: Path) -> None:
    path = tmp_path / "api_key"
    path.write_text("my-own-key-that-is-long-enough\n")
    path.chmod(0o600)
    assert load_or_create_secret(path) == "my-own-key-that-is-long-enough"


def test_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "token_secret"
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_or_create_secret(path)


def test_settings_create_both_secrets_in_the_data_dir_and_reuse_them(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, env={})
    assert settings.api_key == api_key_path(tmp_path).read_text().strip()
    assert settings.token_secret == token_secret_path(tmp_path).read_text().strip()
    assert settings.api_key != settings.token_secret
    assert settings.api_key_file == api_key_path(tmp_path)
    assert _mode(api_key_path(tmp_path)) == 0o600
    again = Settings.load(data_dir=tmp_path, env={})
    assert (again.api_key, again.token_secret) == (settings.api_key, settings.token_secret)


def test_api_key_from_environment_is_used_and_not_written(tmp_path: Path) -> None:
    key = "k" * 40
    settings = Settings.load(data_dir=tmp_path, env={ENV_API_KEY: key})
    assert settings.api_key == key
    assert settings.api_key_file is None
    assert not api_key_path(tmp_path).exists()


def test_too_short_api_key_from_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=ENV_API_KEY):
        Settings.load(data_dir=tmp_path, env={ENV_API_KEY: "short"})


def test_secrets_are_not_in_the_settings_repr(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, env={})
    assert settings.api_key not in repr(settings)
    assert settings.token_secret not in repr(settings)


def test_data_dir_comes_from_environment_or_defaults_to_data() -> None:
    assert default_data_dir({ENV_DATA_DIR: "/srv/balie"}) == Path("/srv/balie")
    assert default_data_dir({}) == Path("data")


def test_default_base_url_follows_host_and_port(tmp_path: Path) -> None:
    assert Settings.load(data_dir=tmp_path, port=9000, env={}).base_url == "http://127.0.0.1:9000"
    wildcard = Settings.load(data_dir=tmp_path, host="0.0.0.0", port=80, env={})
    assert wildcard.base_url == "http://127.0.0.1:80"


@pytest.mark.parametrize("url", ["ftp://x", "balie.example.nl", "https://x/?a=1", "https://x/#f"])
def test_bad_base_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        normalise_base_url(url)


def test_base_url_loses_its_trailing_slash() -> None:
    assert normalise_base_url("https://balie.gemeente.nl/video/") == (
        "https://balie.gemeente.nl/video"
    )
