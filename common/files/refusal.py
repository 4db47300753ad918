"""Why a file, a folder tree or a batch was refused: one typed reason for every layer.

The reason is a stable code (a later protocol message can carry it, and each
UI chooses its own words for it); ``detail`` is a short English text for logs
that never holds file content.
"""

from __future__ import annotations

import enum

from common.errors import DeskhandError


__all__ = ["Refusal", "TransferRefused"]


class Refusal(enum.StrEnum):
    # The offer itself (checked before the user is asked).
    BAD_OFFER = "bad_offer"
    FILE_TOO_LARGE = "file_too_large"
    SESSION_QUOTA = "session_quota"
    NO_SPACE = "no_space"
    # Folder trees.
    ABSOLUTE_PATH = "absolute_path"
    TRAVERSAL = "traversal"
    EMPTY_COMPONENT = "empty_component"
    TOO_DEEP = "too_deep"
    TOO_MANY_ENTRIES = "too_many_entries"
    TREE_TOO_LARGE = "tree_too_large"
    DUPLICATE_PATH = "duplicate_path"
    FILE_AS_FOLDER = "file_as_folder"
    PATH_TOO_LONG = "path_too_long"
    # Receiving one file.
    DECLINED = "declined"
    CANCELLED = "cancelled"
    DATA_BEFORE_ACCEPT = "data_before_accept"
    OUT_OF_ORDER = "out_of_order"
    SIZE_EXCEEDED = "size_exceeded"
    TRUNCATED = "truncated"
    HASH_MISMATCH = "hash_mismatch"
    # The local file system.
    PARTIAL_EXISTS = "partial_exists"
    NO_FREE_NAME = "no_free_name"
    WRITE_FAILED = "write_failed"


class TransferRefused(DeskhandError):
    """A transfer (or a batch, or a tree) was refused; nothing was written for it.

    Attributes:
        reason: the typed reason.
        detail: a short text for logs (no file content, no absolute paths).
    """

    def __init__(self, reason: Refusal, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
