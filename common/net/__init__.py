"""Asyncio adapters: the relay link, the secure channel, pairing flows, the loop thread.

This is the only part of :mod:`common` that does I/O. It stays thin: the
decisions live in :mod:`common.crypto` and :mod:`common.session`.
"""
