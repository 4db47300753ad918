"""The receiving core on real files (security.md 9 cases 37 to 40): links, collisions, limits.

Linux: ``dir_fd``, ``O_NOFOLLOW`` and ``renameat2`` as the writer uses them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.files import writer
from common.files.receive import FileReceiver, Offer, ReceiveState
from common.files.refusal import Refusal, TransferRefused
from common.files.writer import DownloadFolder, Quotas, ReceiveJob, rename_noreplace


TID = bytes.fromhex("00112233445566778899aabbccddeeff")
PART = f".notes.txt.{TID.hex()}.part"
BIG = 1 << 50


def plenty(_fd: int) -> int:
    return BIG


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[DownloadFolder]:
    f = DownloadFolder.create_session_folder(tmp_path, "Deskhand session", Quotas(), plenty)
    yield f
    f.close()


@pytest.fixture(params=["renameat2", "link"])
def rename_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with renameat2 and again with the link-and-unlink fallback."""
    if request.param == "link":
        monkeypatch.setattr(writer, "_renameat2", None)
    elif writer._renameat2 is None:
        pytest.skip("no renameat2 in this C library")
    return str(request.param)


def receive(folder: DownloadFolder, data: bytes, *, name: str = "notes.txt",
            size: int | None = None, digest: bytes | None = None,
            chunk: int = 7) -> FileReceiver:  # fmt: skip
    declared = len(data) if size is None else size
    offer = Offer(TID, name, declared, digest or hashlib.sha256(data).digest())
    receiver = FileReceiver(offer, max_file_bytes=folder.quotas.max_file_bytes)
    folder.admit([declared])
    job = ReceiveJob(folder, receiver)
    job.apply(receiver.accept())
    for pos in range(0, len(data), chunk):
        job.apply(receiver.on_chunk(pos, data[pos : pos + chunk]))
        if receiver.state is ReceiveState.FAILED:
            break
    job.apply(receiver.on_end())
    return receiver


def folder_path(tmp_path: Path, folder: DownloadFolder) -> Path:
    return tmp_path / folder.name


def test_session_folder_is_private_and_unique(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        a = DownloadFolder.create_session_folder(tmp_path, "S", Quotas(), plenty)
        b = DownloadFolder.create_session_folder(tmp_path, "S", Quotas(), plenty)
    finally:
        os.umask(old)
    assert (a.name, b.name) == ("S", "S (1)")
    assert stat.S_IMODE((tmp_path / "S").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "S (1)").stat().st_mode) == 0o700
    a.close()
    b.close()


def test_session_folder_never_reuses_a_planted_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "S").symlink_to(elsewhere)
    with DownloadFolder.create_session_folder(tmp_path, "S", Quotas(), plenty) as f:
        assert f.name == "S (1)"
    assert list(elsewhere.iterdir()) == []


def test_byte_exact_without_execute_bits(
    tmp_path: Path, folder: DownloadFolder, rename_path: str
) -> None:
    data = os.urandom(100_000)
    r = receive(folder, data, name="setup.sh", chunk=65536)
    assert r.state is ReceiveState.DONE and r.final_name == "setup.sh"
    out = folder_path(tmp_path, folder) / "setup.sh"
    assert out.read_bytes() == data
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(os.listdir(folder_path(tmp_path, folder))) == ["setup.sh"]


def test_hostile_name_stays_inside_the_folder(tmp_path: Path, folder: DownloadFolder) -> None:
    r = receive(folder, b"x", name="../../escape.txt")
    assert r.final_name == "escape.txt"
    assert (folder_path(tmp_path, folder) / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_collisions_become_numbered(
    tmp_path: Path, folder: DownloadFolder, rename_path: str
) -> None:
    where = folder_path(tmp_path, folder)
    (where / "notes.txt").write_bytes(b"mine")
    (where / "notes (1).txt").write_bytes(b"mine too")
    r = receive(folder, b"theirs")
    assert r.final_name == "notes (2).txt"
    assert (where / "notes.txt").read_bytes() == b"mine"
    assert (where / "notes (1).txt").read_bytes() == b"mine too"
    assert (where / "notes (2).txt").read_bytes() == b"theirs"


def test_symlink_at_destination_is_not_followed(
    tmp_path: Path, folder: DownloadFolder, rename_path: str
) -> None:
    sensitive = tmp_path / "sensitive"
    sensitive.write_bytes(b"secret")
    where = folder_path(tmp_path, folder)
    (where / "notes.txt").symlink_to(sensitive)
    (where / "notes (1).txt").symlink_to(tmp_path / "dangling")
    r = receive(folder, b"payload")
    assert r.final_name == "notes (2).txt"
    assert sensitive.read_bytes() == b"secret"
    assert (where / "notes.txt").is_symlink() and (where / "notes (1).txt").is_symlink()
    assert not (tmp_path / "dangling").exists()


@pytest.mark.parametrize("kind", ["symlink", "dangling", "file", "folder"])
def test_something_at_the_part_name_refuses_the_transfer(
    tmp_path: Path, folder: DownloadFolder, kind: str
) -> None:
    sensitive = tmp_path / "sensitive"
    sensitive.write_bytes(b"secret")
    part = folder_path(tmp_path, folder) / PART
    if kind == "symlink":
        part.symlink_to(sensitive)
    elif kind == "dangling":
        part.symlink_to(tmp_path / "nothing")
    elif kind == "file":
        part.write_bytes(b"planted")
    else:
        part.mkdir()
    r = receive(folder, b"payload")
    assert r.state is ReceiveState.FAILED and r.reason is Refusal.PARTIAL_EXISTS
    assert sensitive.read_bytes() == b"secret"
    assert not (tmp_path / "nothing").exists()
    assert os.path.lexists(part)  # not ours to delete
    assert sorted(os.listdir(folder_path(tmp_path, folder))) == [PART]
    assert folder.admitted_bytes == 0


def test_more_data_than_declared_leaves_nothing(tmp_path: Path, folder: DownloadFolder) -> None:
    data = b"a" * (10 << 20)
    r = receive(folder, data, size=1024, digest=hashlib.sha256(data[:1024]).digest(), chunk=1000)
    assert r.reason is Refusal.SIZE_EXCEEDED and r.received == 1000
    assert os.listdir(folder_path(tmp_path, folder)) == []
    assert folder.admitted_bytes == 0


def test_sha256_mismatch_leaves_nothing(
    tmp_path: Path, folder: DownloadFolder, rename_path: str
) -> None:
    r = receive(folder, b"tampered content", digest=hashlib.sha256(b"original").digest())
    assert r.reason is Refusal.HASH_MISMATCH
    assert os.listdir(folder_path(tmp_path, folder)) == []


def test_cancel_deletes_the_partial(tmp_path: Path, folder: DownloadFolder) -> None:
    offer = Offer(TID, "notes.txt", 10, bytes(32))
    r = FileReceiver(offer)
    folder.admit([10])
    job = ReceiveJob(folder, r)
    job.apply(r.accept())
    job.apply(r.on_chunk(0, b"12345"))
    assert os.listdir(folder_path(tmp_path, folder)) == [PART]
    job.apply(r.cancel())
    assert os.listdir(folder_path(tmp_path, folder)) == []
    assert folder.admitted_bytes == 0


def test_quotas_and_free_space_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    free = [10_000]
    quotas = Quotas(max_file_bytes=1000, max_session_bytes=1500, free_space_margin=100)
    with DownloadFolder.create_session_folder(tmp_path, "S", quotas, lambda _fd: free[0]) as f:
        for sizes, reason in [
            ([1001], Refusal.FILE_TOO_LARGE),
            ([1000, 501], Refusal.SESSION_QUOTA),
        ]:
            with pytest.raises(TransferRefused) as caught:
                f.admit(sizes)
            assert caught.value.reason is reason
        f.admit([1000])
        free[0] = 1000 + 599  # the admitted 1000 bytes are not on disk yet
        with pytest.raises(TransferRefused) as caught:
            f.admit([500])
        assert caught.value.reason is Refusal.NO_SPACE
        assert f.admitted_bytes == 1000
        f.settle(1000, kept=False)  # declined
        f.admit([500])
        assert os.listdir(tmp_path / "S") == []


def test_real_free_space_check(tmp_path: Path) -> None:
    quotas = Quotas(max_file_bytes=BIG, max_session_bytes=BIG, free_space_margin=0)
    with DownloadFolder.create_session_folder(tmp_path, "S", quotas) as f:
        free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
        with pytest.raises(TransferRefused) as caught:
            f.admit([free + (1 << 30)])
        assert caught.value.reason is Refusal.NO_SPACE
        f.admit([1])


def test_unsanitised_names_are_a_caller_bug(folder: DownloadFolder) -> None:
    for bad in ["../x", "a/b", "CON", "x.", ""]:
        with pytest.raises(ValueError):
            folder.create_partial(bad, TID, 1)


def test_folder_swapped_for_a_link_after_opening(tmp_path: Path) -> None:
    """The descriptor keeps writing into the folder that was opened, not a new path."""
    f = DownloadFolder.create_session_folder(tmp_path, "S", Quotas(), plenty)
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "S").rename(tmp_path / "moved")
    (tmp_path / "S").symlink_to(target)
    r = receive(f, b"data")
    f.close()
    assert r.state is ReceiveState.DONE
    assert (tmp_path / "moved" / "notes.txt").read_bytes() == b"data"
    assert list(target.iterdir()) == []


def test_rename_noreplace_refuses_every_kind_of_existing_name(
    tmp_path: Path, rename_path: str
) -> None:
    (tmp_path / "src").write_bytes(b"new")
    (tmp_path / "file").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "dir").mkdir()
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for dst in ["file", "link", "dir"]:
            with pytest.raises(FileExistsError):
                rename_noreplace("src", dst, fd)
        rename_noreplace("src", "fresh", fd)
    finally:
        os.close(fd)
    assert (tmp_path / "file").read_bytes() == b"old"
    assert (tmp_path / "fresh").read_bytes() == b"new"
    assert not (tmp_path / "src").exists()
