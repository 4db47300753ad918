"""The user client's command line: data folder and revocation freshness (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.__main__ import UsageError, parse_options
from client.core.revocation_store import client_trust, default_client_data_dir
from common.crypto.identity import MAX_CRL_AGE, OrgKey


def test_data_dir_and_revocation_age_come_from_flags_and_config(tmp_path: Path) -> None:
    key = OrgKey.generate()
    config = tmp_path / "client.toml"
    config.write_text(
        'relay_url = "ws://127.0.0.1:1/v1/peer"\n'
        f'org_key = "{key.public_bytes.hex()}"\n'
        "revocation_max_age = 3600\n"
    )
    options = parse_options(["--config", str(config), "--data-dir", str(tmp_path / "state")])
    assert options.data_dir == tmp_path / "state"
    assert options.revocation_max_age == 3600.0
    trust = client_trust(options.org_public_key, options.data_dir, max_crl_age=3600.0)
    assert trust.max_crl_age == 3600.0 and trust.revocations is not None
    config.write_text(config.read_text().replace("3600", "0"))
    with pytest.raises(UsageError, match="revocation_max_age"):
        parse_options(["--config", str(config)])


def test_defaults() -> None:
    assert default_client_data_dir({"XDG_DATA_HOME": "/x"}) == Path("/x/deskhand/client")
    assert default_client_data_dir({"HOME": "/h"}).parts[-2:] == ("deskhand", "client")
    assert MAX_CRL_AGE == 4 * 3600
