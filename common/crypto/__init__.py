"""Cryptography for Deskhand: pairing codes, the RA1 handshake, the record layer, identities."""
