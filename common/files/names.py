"""Received file names, made safe (security.md 5.2), and folder trees planned within limits.

Pure functions, no I/O. A name from the peer is hostile: it may climb out of
the download folder (``../../x``, ``/etc/passwd``, ``C:\\x``, ``\\\\srv\\x``),
name a Windows device (``CON``, ``nul.txt``, ``COM¹``), hide its real type
behind bidi controls (``invoice<U+202E>fdp.exe`` shows as "invoiceexe.pdf"),
or be too long for the file system.

:func:`sanitise_name` never refuses a single file's name: it reduces it to a
safe component and reports what it changed, so the accept dialog can show
both. :func:`plan_tree` does refuse a folder tree that tries to climb or
exceeds the limits, with a typed :class:`~common.files.refusal.Refusal`.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import unicodedata
from collections.abc import Iterable

from common.files.refusal import Refusal, TransferRefused


__all__ = [
    "FALLBACK_NAME",
    "MAX_NAME_BYTES",
    "RISKY_EXTENSIONS",
    "NameChange",
    "PlannedEntry",
    "SafeName",
    "TreeEntry",
    "TreeLimits",
    "TreePlan",
    "is_device_name",
    "is_risky_type",
    "is_safe_component",
    "plan_tree",
    "sanitise_component",
    "sanitise_name",
    "split_extension",
]

# 255 bytes is the usual file-system limit, but the writer adds ".<name>.<32 hex>.part"
# (39 bytes) while receiving and " (NNNN)" on a collision: 200 leaves room for both.
MAX_NAME_BYTES = 200
# An extension longer than this is not worth keeping whole when truncating.
_MAX_EXTENSION_BYTES = 32
FALLBACK_NAME = "file"

# Windows refuses these (with any extension, and with superscript digits, which
# NFKC folds to ASCII) even on a file server a Linux machine writes to.
_DEVICE_STEMS = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"}
    | {f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789"}
)
# ':' also opens NTFS alternate data streams ("a:stream").
_RESERVED = frozenset('<>:"|?*')
_SEPARATORS = re.compile(r"[/\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")

# security.md 5.3, and more that run code or mount images when double-clicked.
RISKY_EXTENSIONS = frozenset(
    {
        # Windows executables, installers, scripts and shortcuts
        "exe", "com", "scr", "pif", "cpl", "msc", "msi", "msp", "msix", "msixbundle", "appx",
        "appxbundle", "bat", "cmd", "ps1", "psm1", "psd1", "ps1xml", "vbs", "vbe", "js", "jse",
        "wsf", "wsh", "hta", "lnk", "url", "scf", "reg", "inf", "dll", "sys", "chm", "application",
        "gadget", "iso", "img", "vhd", "vhdx", "xll", "docm", "xlsm", "pptm", "jar",
        # macOS
        "app", "pkg", "dmg", "command", "tool", "workflow",
        # Linux and other Unix
        "sh", "bash", "zsh", "csh", "ksh", "run", "bin", "desktop", "appimage", "deb", "rpm",
        "snap", "flatpak", "so", "ko",
        # interpreters that run a file on double-click
        "py", "pyw", "pyz", "pl", "rb", "php", "lua",
        # Android
        "apk",
    }
)  # fmt: skip


class NameChange(enum.StrEnum):
    """One kind of change the sanitiser made; the accept dialog can explain each."""

    NORMALISED = "normalised"  # not NFC before
    PATH_REMOVED = "path_removed"  # folders (or a drive) in front of the name were dropped
    INVISIBLE_REMOVED = "invisible_removed"  # bidi controls and other format characters
    CONTROL_REPLACED = "control_replaced"  # control characters became "_"
    RESERVED_REPLACED = "reserved_replaced"  # < > : " | ? * / \ became "_"
    EDGES_STRIPPED = "edges_stripped"  # leading dots or spaces, trailing dots or spaces
    DEVICE_NAME = "device_name"  # a Windows device name got a "_" in front
    TRUNCATED = "truncated"  # longer than MAX_NAME_BYTES
    EMPTY = "empty"  # nothing was left: FALLBACK_NAME


@dataclasses.dataclass(frozen=True, slots=True)
class SafeName:
    """A name that is one safe path component, and how it came from the original."""

    name: str
    original: str
    changes: frozenset[NameChange]

    @property
    def changed(self) -> bool:
        return self.name != self.original


def sanitise_name(raw: str) -> SafeName:
    """The safe file name for a single received file's declared name.

    Folders in front (``/`` or ``\\``, a drive letter, a UNC prefix) are
    dropped: only the last component is kept (security.md 9, case 35). Then
    :func:`sanitise_component` applies. The result is never empty, never ``.``
    or ``..``, never a device name, at most :data:`MAX_NAME_BYTES` UTF-8 bytes,
    NFC, and ``sanitise_name(result.name).name == result.name``.
    """
    changes: set[NameChange] = set()
    text = _nfc(raw, changes)
    parts = [p for p in _SEPARATORS.split(text) if p]
    last = parts[-1] if parts else ""
    if len(parts) > 1 or (parts and last != text):
        changes.add(NameChange.PATH_REMOVED)
    if _DRIVE.match(last):
        last = last[2:]
        changes.add(NameChange.PATH_REMOVED)
    if last in (".", ".."):
        last = ""
        changes.add(NameChange.PATH_REMOVED)
    result = sanitise_component(last)
    return SafeName(result.name, raw, frozenset(changes | result.changes))


def sanitise_component(raw: str) -> SafeName:
    """One path component made safe, without looking for folders in it.

    Separators become ``_`` (so the result is still one component); used for
    each component of a tree after :func:`plan_tree` has refused traversal.
    """
    changes: set[NameChange] = set()
    text = raw
    # Each step can undo another's work (removing a format character can make
    # the string non-NFC, truncating can expose a trailing dot), so repeat
    # until nothing changes; two or three rounds always suffice.
    for _ in range(8):
        step = _one_round(text, changes)
        if step == text:
            break
        text = step
    else:  # pragma: no cover - no input found that needs more rounds
        text = FALLBACK_NAME
    return SafeName(text, raw, frozenset(changes))


def _one_round(text: str, changes: set[NameChange]) -> str:
    text = _nfc(text, changes)
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":
            # Bidi overrides and isolates, zero-width characters, BOM, soft
            # hyphen: all invisible, all usable to disguise a name (this also
            # splits emoji joined with ZWJ, which is an acceptable cost).
            changes.add(NameChange.INVISIBLE_REMOVED)
        elif category in ("Cc", "Cs", "Zl", "Zp"):
            # Control characters, lone surrogates (not encodable as UTF-8),
            # line and paragraph separators.
            out.append("_")
            changes.add(NameChange.CONTROL_REPLACED)
        elif ch in _RESERVED or ch in "/\\":
            out.append("_")
            changes.add(NameChange.RESERVED_REPLACED)
        else:
            out.append(ch)
    text = "".join(out)
    # Windows drops trailing dots and spaces ("evil.exe." runs as evil.exe); a
    # leading dot hides the file from the user; leading spaces mislead.
    stripped = text.strip(" ").lstrip(".").rstrip(". ")
    if stripped != text:
        changes.add(NameChange.EDGES_STRIPPED)
        text = stripped
    if is_device_name(text):
        text = "_" + text
        changes.add(NameChange.DEVICE_NAME)
    if len(text.encode("utf-8")) > MAX_NAME_BYTES:
        text = _truncate(text)
        changes.add(NameChange.TRUNCATED)
    if not text:
        text = FALLBACK_NAME
        changes.add(NameChange.EMPTY)
    return text


def _nfc(text: str, changes: set[NameChange]) -> str:
    # Lone surrogates make normalize() fine but encode() fail; they are
    # replaced later, so only normalise what Python can.
    normal = unicodedata.normalize("NFC", text)
    if normal != text:
        changes.add(NameChange.NORMALISED)
    return normal


def _truncate(text: str) -> str:
    stem, ext = split_extension(text)
    ext_bytes = len(ext.encode("utf-8"))
    if not stem or ext_bytes > _MAX_EXTENSION_BYTES:
        stem, ext, ext_bytes = text, "", 0
    budget = MAX_NAME_BYTES - ext_bytes
    # Cut at a character boundary, never inside a UTF-8 sequence.
    cut = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return cut + ext


def split_extension(name: str) -> tuple[str, str]:
    """``("report", ".pdf")`` for ``"report.pdf"``; ``(name, "")`` without one."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def is_device_name(name: str) -> bool:
    """True for names Windows maps to a device: ``CON``, ``nul.txt``, ``COM¹.log``, ``aux .c``."""
    folded = unicodedata.normalize("NFKC", name)
    stem = folded.split(".", 1)[0].rstrip(" ").upper()
    return stem in _DEVICE_STEMS


def is_safe_component(name: str) -> bool:
    """True when name is what the sanitiser produces: a defence-in-depth check for the writer."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return 0 < size <= MAX_NAME_BYTES and sanitise_component(name).name == name


def is_risky_type(name: str) -> bool:
    """True when the name's type can run code when opened (the accept dialog's red warning).

    Only the last extension counts, as it decides what opens the file
    (``report.pdf.exe`` is risky, ``setup.exe.txt`` is not); it is compared
    after the sanitiser's clean-up, so bidi tricks and trailing dots do not
    hide it.
    """
    clean = sanitise_name(name).name
    _, ext = split_extension(clean)
    return unicodedata.normalize("NFKC", ext[1:]).casefold() in RISKY_EXTENSIONS


# --- folder trees ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class TreeEntry:
    """One entry of a folder tree as the sender declares it: a relative path with ``/``."""

    path: str
    size: int = 0
    is_dir: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class TreeLimits:
    """How large a received folder tree may be. Defaults allow a batch of 10,000 small files."""

    max_depth: int = 32
    max_entries: int = 50_000
    max_total_bytes: int = 16 << 30
    # Linux PATH_MAX is 4096; stay well within it under a Downloads folder.
    max_path_bytes: int = 3072


@dataclasses.dataclass(frozen=True, slots=True)
class PlannedEntry:
    """Where one tree entry will be written: safe components, relative to the target folder."""

    source: str
    parts: tuple[str, ...]
    size: int
    is_dir: bool
    changed: bool


@dataclasses.dataclass(frozen=True, slots=True)
class TreePlan:
    """A tree that passed every check; folders come before what they hold."""

    entries: tuple[PlannedEntry, ...]
    total_bytes: int
    file_count: int
    renamed: int


def plan_tree(entries: Iterable[TreeEntry], limits: TreeLimits) -> TreePlan:
    """Check a declared folder tree and map each path to safe components.

    Every component is checked. A path that climbs (``..``), is absolute
    (``/x``, ``\\\\srv\\x``, ``C:\\x``) or has empty components refuses the
    whole tree: unlike a single name, a tree cannot be reduced to a basename
    without changing what it means. Components that only look wrong (trailing
    dots, device names, reserved characters) are sanitised; if that makes two
    entries land on the same path (compared case-insensitively, as Windows and
    macOS do), the tree is refused rather than guessed at.

    Raises:
        TransferRefused: with the first reason found.
    """
    planned: list[PlannedEntry] = []
    seen: dict[tuple[str, ...], bool] = {}  # folded path -> is_dir
    total = 0
    files = 0
    renamed = 0
    for count, entry in enumerate(entries, start=1):
        if count > limits.max_entries:
            raise TransferRefused(Refusal.TOO_MANY_ENTRIES, f"more than {limits.max_entries}")
        if entry.size < 0 or (entry.is_dir and entry.size):
            raise TransferRefused(Refusal.BAD_OFFER, "invalid size")
        parts = _tree_parts(entry.path)
        if len(parts) > limits.max_depth:
            raise TransferRefused(Refusal.TOO_DEEP, f"deeper than {limits.max_depth}")
        safe = tuple(sanitise_component(p) for p in parts)
        names = tuple(s.name for s in safe)
        if len("/".join(names).encode("utf-8")) > limits.max_path_bytes:
            raise TransferRefused(Refusal.PATH_TOO_LONG, f"over {limits.max_path_bytes} bytes")
        folded = tuple(n.casefold() for n in names)
        if folded in seen:
            raise TransferRefused(Refusal.DUPLICATE_PATH, f"entry {count}")
        for depth in range(1, len(folded)):
            parent = seen.get(folded[:depth])
            if parent is False:
                raise TransferRefused(Refusal.FILE_AS_FOLDER, f"entry {count}")
        seen[folded] = entry.is_dir
        if not entry.is_dir:
            files += 1
            total += entry.size
            if total > limits.max_total_bytes:
                raise TransferRefused(Refusal.TREE_TOO_LARGE, f"over {limits.max_total_bytes}")
        changed = any(s.changed for s in safe)
        renamed += changed
        planned.append(PlannedEntry(entry.path, names, entry.size, entry.is_dir, changed))
    # Implicit parents (a file "a/b" without an entry "a") are fine: the writer
    # creates them. Sorting by depth puts folders before their contents.
    planned.sort(key=lambda p: len(p.parts))
    return TreePlan(tuple(planned), total, files, renamed)


def _tree_parts(path: str) -> list[str]:
    text = unicodedata.normalize("NFC", path)
    if not text:
        raise TransferRefused(Refusal.EMPTY_COMPONENT, "empty path")
    if text[0] in "/\\" or _DRIVE.match(text):
        raise TransferRefused(Refusal.ABSOLUTE_PATH, "absolute path")
    parts = _SEPARATORS.split(text)
    for part in parts:
        if part in (".", ".."):
            raise TransferRefused(Refusal.TRAVERSAL, "'.' or '..' in a path")
        if not part:
            raise TransferRefused(Refusal.EMPTY_COMPONENT, "empty component")
    return parts
