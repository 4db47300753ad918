"""The Deskhand relay: pairs a user with a technician and forwards their bytes.

The relay sees only the control messages of
:mod:`common.protocol.relay_wire`; everything the peers say to each other is
end-to-end encrypted inside Forward frames that it passes on unchanged.

Modules:

* :mod:`relay.config`: :class:`~relay.config.RelayConfig`, every limit and timeout.
* :mod:`relay.limits`: connection caps and failure rate limits (pure).
* :mod:`relay.registry`: nameplates, pairing and connection states (pure).
* :mod:`relay.handler`: the websocket connection handler.
* :mod:`relay.server`: :func:`~relay.server.serve`, the composition root.
* :mod:`relay.__main__`: the ``deskhand-relay`` / ``python -m relay`` command.

This package imports nothing on purpose, so that ``python -m relay`` and its
admin subcommands start quickly.
"""

from __future__ import annotations


__all__: list[str] = []
