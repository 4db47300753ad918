"""Alembic migrations of the relay's database (run by relay.store.Store.migrate)."""
