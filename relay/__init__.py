"""The Deskhand relay: pairs a user with a technician and forwards their bytes.

The relay sees only the control messages of
:mod:`common.protocol.relay_wire`; everything the peers say to each other is
end-to-end encrypted inside Forward frames that it passes on unchanged.

Modules:

* :mod:`relay.config`: :class:`~relay.config.RelayConfig`, every setting, and
  :func:`~relay.config.load_config` (defaults < TOML < environment < flags).
* :mod:`relay.limits`: connection caps, rate limits and lockouts (pure).
* :mod:`relay.registry`: nameplates, pairing and connection states (pure).
* :mod:`relay.queue`: the help-request queue (pure).
* :mod:`relay.accounts`: account names, Argon2id hashes, bearer tokens (pure).
* :mod:`relay.store`: the database (SQLAlchemy; alembic migrations in ``migrations/``).
* :mod:`relay.services`: the database thread and sign-in (:class:`~relay.services.Authenticator`).
* :mod:`relay.peer`, :mod:`relay.hub`: connections, their outboxes, and the
  queue at run time (storage and notifications).
* :mod:`relay.metrics`: counters for ``/metrics``.
* :mod:`relay.handler`: the websocket connection handler (:class:`~relay.handler.Relay`),
  with :mod:`relay.pairing_handlers` (codes, the queue), :mod:`relay.auth_handlers`
  (sign-in, claim limits), :mod:`relay.forwarding` (forwarding, bounded I/O),
  :mod:`relay.closing` (deadlines, closing), :mod:`relay.resume_desk` (resumes)
  and :mod:`relay.logs` (log lines).
* :mod:`relay.server`: :func:`~relay.server.serve`, the composition root.
* :mod:`relay.__main__`: the ``deskhand-relay`` / ``python -m relay`` command,
  with :mod:`relay.provision` (``init``), :mod:`relay.account_admin`
  (``account``) and :mod:`relay.admin` (``org``, ``cert``).

This package imports nothing on purpose, so that ``python -m relay`` and its
admin subcommands start quickly.
"""

from __future__ import annotations


__all__: list[str] = []
