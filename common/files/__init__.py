"""The receiving side of file transfer: names, the per-file state machine, the writer.

Both apps receive files (technician to user, and user to technician), and each
treats the other as hostile (security.md section 5), so this core is shared.
``names`` and ``receive`` are pure; ``writer`` is the only module here that
touches the file system, and it is Linux-only for now (``dir_fd``,
``O_NOFOLLOW``, ``renameat2``).
"""
