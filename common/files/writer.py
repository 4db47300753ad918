"""Writing received files: the only file-system code of the receiving core (Linux).

Everything is relative to a directory file descriptor, so a folder renamed or
replaced by a symlink after it was opened cannot redirect a write. Files are
created as ``.<name>.<id hex>.part`` with ``O_CREAT|O_EXCL|O_NOFOLLOW`` and
mode 0600 (no execute bits, whatever the umask or the sender says), and get
their final name with a rename that never replaces anything: a name that is
taken, even by a dangling symlink, becomes ``name (1).ext``, ``name (2).ext``...

The no-replace rename is ``renameat2(RENAME_NOREPLACE)`` through ctypes when
the C library has it and the file system supports it: one atomic step, and it
works on file systems without hard links (FAT and exFAT USB sticks, some
FUSE and SMB mounts). Where it is missing (ENOSYS, EINVAL), ``os.link`` then
``os.unlink`` gives the same no-clobber guarantee (``linkat`` fails with
EEXIST and never follows the destination); its only cost is a moment in which
both names exist. A plain ``os.rename`` is never used: it replaces silently.

Quotas (per file, per session) and free space (with a margin) are checked by
:meth:`DownloadFolder.admit`, before the user is asked, so a refused batch
never writes a byte.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

from common.files.names import is_safe_component, sanitise_name, split_extension
from common.files.receive import (
    Action,
    CreatePartial,
    DeletePartial,
    FileReceiver,
    Finalise,
    ReceiveState,
    WriteAt,
)
from common.files.refusal import Refusal, TransferRefused


__all__ = [
    "MAX_COLLISIONS",
    "DownloadFolder",
    "PartialFile",
    "Quotas",
    "ReceiveJob",
    "candidate_names",
    "rename_noreplace",
]

MAX_COLLISIONS = 9999
_RENAME_NOREPLACE = 1  # from linux/fs.h
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC
_FILE_MODE = 0o600


@dataclasses.dataclass(frozen=True, slots=True)
class Quotas:
    """Receiving limits. Per-file is above 4 GiB on purpose: large images must work."""

    max_file_bytes: int = 8 << 30
    max_session_bytes: int = 16 << 30
    free_space_margin: int = 1 << 30


def _fs_free_bytes(dir_fd: int) -> int:
    st = os.statvfs(dir_fd)
    return st.f_bavail * st.f_frsize


def _load_renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None  # glibc before 2.28, or another C library
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    result: Callable[..., int] = function
    return result


_renameat2 = _load_renameat2()


def rename_noreplace(src: str, dst: str, dir_fd: int) -> None:
    """Rename src to dst inside dir_fd, never replacing an existing dst (file, folder or link).

    Raises:
        FileExistsError: dst exists.
        OSError: any other failure.
    """
    if _renameat2 is not None:
        if _renameat2(dir_fd, os.fsencode(src), dir_fd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), dst)
    os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    os.unlink(src, dir_fd=dir_fd)


def candidate_names(name: str) -> Iterator[str]:
    """``name``, then ``stem (1).ext`` ... ``stem (9999).ext``."""
    yield name
    stem, ext = split_extension(name)
    for n in range(1, MAX_COLLISIONS + 1):
        yield f"{stem} ({n}){ext}"


class DownloadFolder:
    """A folder received files go into, held open by descriptor, with its quotas.

    Use :meth:`create_session_folder` (a new 0700 folder per session, under
    the user's Downloads) or :meth:`open_existing` (a folder the user picked).
    """

    def __init__(
        self,
        dir_fd: int,
        name: str,
        quotas: Quotas,
        free_bytes: Callable[[int], int] = _fs_free_bytes,
    ) -> None:
        self._fd = dir_fd
        self.name = name
        self.quotas = quotas
        self._free_bytes = free_bytes
        self._admitted = 0  # counts against the session quota
        self._pending = 0  # admitted but not yet on disk: counts against free space

    @classmethod
    def create_session_folder(
        cls,
        parent: Path,
        name: str,
        quotas: Quotas,
        free_bytes: Callable[[int], int] = _fs_free_bytes,
    ) -> DownloadFolder:
        """Create a fresh folder ``name`` (or ``name (1)``...) in parent, mode 0700.

        The parent (the user's Downloads) is the user's own choice, so a
        symlink there is followed; the new folder itself is opened with
        O_NOFOLLOW and checked to be a directory we own.
        """
        parent_fd = os.open(parent, _DIR_FLAGS)
        try:
            for candidate in candidate_names(sanitise_name(name).name):
                try:
                    os.mkdir(candidate, 0o700, dir_fd=parent_fd)
                except FileExistsError:
                    continue
                fd = os.open(candidate, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
                break
            else:
                raise TransferRefused(Refusal.NO_FREE_NAME, "no free session folder name")
        finally:
            os.close(parent_fd)
        try:
            info = os.fstat(fd)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                raise TransferRefused(Refusal.WRITE_FAILED, "session folder is not ours")
            os.fchmod(fd, 0o700)  # mkdir's mode is reduced by the umask; make it exact
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, candidate, quotas, free_bytes)

    @classmethod
    def open_existing(
        cls,
        path: Path,
        quotas: Quotas,
        free_bytes: Callable[[int], int] = _fs_free_bytes,
    ) -> DownloadFolder:
        """Open a folder the user picked (its mode is left as the user has it)."""
        return cls(os.open(path, _DIR_FLAGS), path.name, quotas, free_bytes)

    @property
    def fd(self) -> int:
        return self._fd

    @property
    def admitted_bytes(self) -> int:
        return self._admitted

    def admit(self, sizes: Sequence[int]) -> None:
        """Reserve room for a batch before the user is asked; all or nothing.

        Raises:
            TransferRefused: FILE_TOO_LARGE, SESSION_QUOTA or NO_SPACE.
        """
        total = sum(sizes)
        for size in sizes:
            if size > self.quotas.max_file_bytes:
                raise TransferRefused(Refusal.FILE_TOO_LARGE, f"{size} bytes")
        if self._admitted + total > self.quotas.max_session_bytes:
            raise TransferRefused(Refusal.SESSION_QUOTA, f"{self._admitted + total} bytes")
        free = self._free_bytes(self._fd) - self._pending
        if free - total < self.quotas.free_space_margin:
            raise TransferRefused(Refusal.NO_SPACE, f"{total} bytes, {max(free, 0)} free")
        self._admitted += total
        self._pending += total

    def settle(self, size: int, *, kept: bool) -> None:
        """An admitted file is on disk (kept) or gone (declined, failed): update the books."""
        self._pending -= size
        if not kept:
            self._admitted -= size

    def create_partial(self, name: str, transfer_id: bytes, size: int) -> PartialFile:
        """Create ``.<name>.<id>.part`` exclusively; an existing one (even a link) is refused.

        Raises:
            ValueError: name is not a sanitised component (a bug in the caller).
            TransferRefused: PARTIAL_EXISTS.
        """
        if not is_safe_component(name):
            raise ValueError("not a sanitised file name")
        part = f".{name}.{transfer_id.hex()}.part"
        try:
            fd = os.open(part, _CREATE_FLAGS, _FILE_MODE, dir_fd=self._fd)
        except (FileExistsError, IsADirectoryError) as e:
            # The id is random: something planted this name, or a stale transfer left it.
            raise TransferRefused(Refusal.PARTIAL_EXISTS, "partial file name taken") from e
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise TransferRefused(Refusal.PARTIAL_EXISTS, "partial file is a link") from e
            raise
        try:
            os.fchmod(fd, _FILE_MODE)  # the umask cannot add bits, but be exact
        except BaseException:
            os.close(fd)
            os.unlink(part, dir_fd=self._fd)
            raise
        return PartialFile(self, fd, part, name, size)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DownloadFolder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PartialFile:
    """One ``.part`` file being written; ends finalised (renamed) or discarded (deleted)."""

    def __init__(self, folder: DownloadFolder, fd: int, part_name: str, name: str, size: int):
        self._folder = folder
        self._fd = fd
        self.part_name = part_name
        self.name = name
        self.size = size
        self._settled = False

    def write_at(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > self.size:
            # The state machine already stops this; a second check costs nothing.
            raise TransferRefused(Refusal.SIZE_EXCEEDED, "write beyond the declared size")
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written

    def finalise(self) -> str:
        """Flush, then rename to the first free candidate name; returns that name.

        Raises:
            TransferRefused: the file is not the declared size, or no name is free
                (the partial file is deleted in both cases).
        """
        try:
            if os.fstat(self._fd).st_size != self.size:
                raise TransferRefused(Refusal.TRUNCATED, "partial file has the wrong size")
            os.fsync(self._fd)
            self._close()
            for candidate in candidate_names(self.name):
                try:
                    rename_noreplace(self.part_name, candidate, self._folder.fd)
                except FileExistsError:
                    continue
                self._settle(kept=True)
                return candidate
            raise TransferRefused(Refusal.NO_FREE_NAME, "every candidate name is taken")
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and delete the partial file; safe to call more than once."""
        self._close()
        if not self._settled:
            try:
                os.unlink(self.part_name, dir_fd=self._folder.fd)
            except FileNotFoundError:
                pass
            self._settle(kept=False)

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _settle(self, *, kept: bool) -> None:
        if not self._settled:
            self._settled = True
            self._folder.settle(self.size, kept=kept)


class ReceiveJob:
    """Carries out one :class:`FileReceiver`'s actions in a :class:`DownloadFolder`.

    The file's size must already be admitted (:meth:`DownloadFolder.admit`).
    A local failure is fed back to the receiver (``io_failed``), whose
    clean-up actions run in turn, so the receiver's state is always the truth.
    """

    def __init__(self, folder: DownloadFolder, receiver: FileReceiver) -> None:
        self.folder = folder
        self.receiver = receiver
        self._partial: PartialFile | None = None
        self._released = False

    def apply(self, actions: Sequence[Action]) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            try:
                self._do(action)
            except TransferRefused as e:
                queue = self.receiver.io_failed(e.reason)
            except OSError:
                queue = self.receiver.io_failed(Refusal.WRITE_FAILED)
        if self.receiver.state is ReceiveState.FAILED:
            self._release()

    def _do(self, action: Action) -> None:
        if isinstance(action, CreatePartial):
            size = self.receiver.offer.size
            self._partial = self.folder.create_partial(action.name, action.transfer_id, size)
        elif isinstance(action, WriteAt):
            self._need_partial().write_at(action.offset, action.data)
        elif isinstance(action, Finalise):
            self.receiver.finalised(self._need_partial().finalise())
        elif isinstance(action, DeletePartial):
            if self._partial is not None:
                self._partial.discard()

    def _need_partial(self) -> PartialFile:
        if self._partial is None:
            raise TransferRefused(Refusal.WRITE_FAILED, "no partial file")
        return self._partial

    def _release(self) -> None:
        # A file refused before its partial existed still holds its admission.
        if not self._released:
            self._released = True
            if self._partial is None:
                self.folder.settle(self.receiver.offer.size, kept=False)
            else:
                self._partial.discard()
