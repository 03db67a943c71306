"""node/private_files.py: every secret or export file is made with mode 0600 from its first byte, a replaced
file is never seen half-written, and an export the operator names is refused in one line when it exists or
cannot be written, leaving nothing behind."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from node.private_files import PrivateFileError, replace_private, save_private, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_and_its_new_directory_are_private_from_the_start(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        write_private(tmp_path / "keys" / "data.key", b"secret")
    finally:
        os.umask(old)
    assert (tmp_path / "keys" / "data.key").read_bytes() == b"secret"
    assert mode(tmp_path / "keys" / "data.key") == 0o600 and mode(tmp_path / "keys") == 0o700


def test_exclusive_refuses_an_existing_file_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "node.secret"
    write_private(path, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_private(path, b"second", exclusive=True)
    assert path.read_bytes() == b"first"
    write_private(path, b"third")  # not exclusive: truncated and written
    assert path.read_bytes() == b"third"


def test_replace_leaves_the_new_content_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_bytes(b"old")
    path.chmod(0o644)
    replace_private(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]


def test_a_failed_replace_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "card.json"
    path.write_bytes(b"old")

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        replace_private(path, b"new")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]


def test_an_export_is_new_or_forced_and_refused_in_one_line(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "backup.ccmb"
    save_private(out, b"one", force=False)
    with pytest.raises(PrivateFileError) as refused:
        save_private(out, b"two", force=False)
    assert str(refused.value) == f"{out} exists: choose another file name or add --force"
    save_private(out, b"two", force=True)
    assert out.read_bytes() == b"two" and mode(out) == 0o600

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    other = tmp_path / "other.ccmb"
    with pytest.raises(PrivateFileError) as failed:
        save_private(other, b"three", force=False)
    assert str(failed.value) == f"cannot write {other}: No space left on device"
    assert not other.exists()  # no half-written export is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.ccmb"]
