"""The user client's device key: made once, kept with mode 0600, never replaced."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from common.device_key import DEVICE_KEY_FILE, load_or_create_device_key
from common.record.log import public_key_bytes


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_on_first_use_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "client"
    key = load_or_create_device_key(folder)
    path = folder / DEVICE_KEY_FILE
    assert _mode(path) == 0o600
    assert _mode(folder) == 0o700
    assert public_key_bytes(load_or_create_device_key(folder)) == public_key_bytes(key)
    assert [p.name for p in folder.iterdir()] == [DEVICE_KEY_FILE]  # no temporary file left


def test_a_readable_key_file_is_narrowed(tmp_path: Path) -> None:
    key = load_or_create_device_key(tmp_path)
    path = tmp_path / DEVICE_KEY_FILE
    path.chmod(0o644)
    assert public_key_bytes(load_or_create_device_key(tmp_path)) == public_key_bytes(key)
    assert _mode(path) == 0o600


def test_a_damaged_key_file_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / DEVICE_KEY_FILE
    path.write_bytes(b"not a key")
    with pytest.raises(ValueError, match="device key"):
        load_or_create_device_key(tmp_path)
    assert path.read_bytes() == b"not a key"
