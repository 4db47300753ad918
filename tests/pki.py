"""Test helpers: a real organisation key and certified technicians."""

from __future__ import annotations

import dataclasses
import time

from common.crypto.identity import OrgKey, OrgTrust, TechnicianCredential


DAY = 24 * 3600


@dataclasses.dataclass
class Org:
    key: OrgKey
    trust: OrgTrust
    revoked: list[int] = dataclasses.field(default_factory=list)
    next_serial: int = 1

    def crl(self, issued_at: float | None = None) -> bytes:
        when = int(time.time() if issued_at is None else issued_at)
        return self.key.sign_revocations(self.revoked, when)

    def technician(
        self,
        name: str = "Jane Doe",
        *,
        org: str = "ACME IT",
        not_before: float | None = None,
        days: float = 30,
        crl_at: float | None = None,
        roles: tuple[str, ...] = ("technician",),
    ) -> TechnicianCredential:
        start = int(time.time() - 60 if not_before is None else not_before)
        private = TechnicianCredential.generate_key()
        serial = self.next_serial
        self.next_serial += 1
        cert = self.key.issue(
            serial=serial,
            tech_id=f"tech-{serial}",
            name=name,
            org=org,
            public_key=private.public_key().public_bytes_raw(),
            roles=roles,
            not_before=start,
            not_after=int(start + days * DAY),
        )
        return TechnicianCredential(private, cert, self.crl(crl_at))


def make_org() -> Org:
    key = OrgKey.generate()
    return Org(key, OrgTrust(key.public_bytes))
