"""Relay settings: defaults < TOML file < environment < flags, validated with clear sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, coerce, parse_text
from relay.config import RelayConfig, env_name, flag_name, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_config()
    assert config == RelayConfig()
    # Issue 14: every relay requires a sign-in to claim codes unless told otherwise.
    assert (config.host, config.database_url, config.code_claims) == ("127.0.0.1", "", "login")


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    path = write(tmp_path, "max_queued = 10\naddress_rate = 10\ntoken_ttl = 10\n")
    env = {"DESKHAND_RELAY_ADDRESS_RATE": "20", "DESKHAND_RELAY_TOKEN_TTL": "20"}
    config = load_config(config_file=path, env=env, flags={"token_ttl": 30.0})
    assert (config.max_queued, config.address_rate, config.token_ttl) == (10, 20, 30.0)


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "max_queued = 7\n")
    assert load_config(env={"DESKHAND_RELAY_CONFIG": str(path)}).max_queued == 7


def test_paths_in_the_file_are_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls/c.pem").write_text("x")
    (tmp_path / "tls/k.pem").write_text("x")
    (tmp_path / "org").mkdir()
    path = write(
        tmp_path,
        'tls_certificate = "tls/c.pem"\ntls_key = "tls/k.pem"\norg_dir = "org"\n'
        'database_url = "sqlite:///db/relay.sqlite3"\n',
    )
    config = load_config(config_file=path)
    assert config.tls_certificate == str(tmp_path.resolve() / "tls/c.pem")
    assert config.org_dir == str(tmp_path.resolve() / "org")
    assert config.database_url == f"sqlite:///{tmp_path.resolve() / 'db/relay.sqlite3'}"


@pytest.mark.parametrize(
    "url", ["sqlite:////abs/relay.sqlite3", "sqlite://", "postgresql+psycopg://u@h/db"]
)
def test_other_database_urls_are_kept(tmp_path: Path, url: str) -> None:
    assert load_config(config_file=write(tmp_path, f'database_url = "{url}"\n')).database_url == url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_queud = 1\n", "relay.toml: unknown setting 'max_queud'"),
        ("max_queued = '5'\n", "relay.toml: max_queued must be an integer, not '5'"),
        ("max_queued = true\n", "max_queued must be an integer, not True"),
        ("token_ttl = 'soon'\n", "token_ttl must be a number"),
        ("host = 5\n", "host must be a string"),
        ("max_queued = 0\n", "relay.toml: max_queued: max_queued must be a positive integer"),
        ("code_claims = 'maybe'\n", "code_claims must be one of auto, login, anyone"),
        ("token_ttl = 1e9\n", "token_ttl must be more than 0 and at most 604800"),
        ("max_request_text = 100000\n", "max_request_text must be at most"),
        ('tls_certificate = "c.pem"\n', "tls_certificate and tls_key go together"),
        ("[section]\n", "unknown setting 'section'"),
        ("= broken", "not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_the_setting(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(config_file=write(tmp_path, text))
    assert message in str(refused.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(config_file=tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DESKHAND_RELAY_PORT": "http"}, "DESKHAND_RELAY_PORT must be an integer, not 'http'"),
        ({"DESKHAND_RELAY_PORT": "70000"}, "DESKHAND_RELAY_PORT: port must be between 0 and 65535"),
        ({"DESKHAND_RELAY_IDLE_TIMEOUT": "nan"}, "must be a finite number"),
        ({"DESKHAND_RELAY_BOGUS": "1"}, "unknown environment variable DESKHAND_RELAY_BOGUS"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(env=env)
    assert message in str(refused.value)


def test_other_environment_variables_are_ignored() -> None:
    assert load_config(env={"PATH": "/bin", "DESKHAND_CLIENT_X": "1"}) == RelayConfig()


def test_bad_flags_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--max-queued: max_queued must be a positive"):
        load_config(flags={"max_queued": 0})


def test_plain_ws_off_loopback_is_refused_and_tls_files_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plain ws:// is only allowed on loopback"):
        load_config(flags={"host": "0.0.0.0"})
    with pytest.raises(
        ConfigError, match=r"--tls-certificate: /nope/c\.pem is not a readable file"
    ):
        load_config(flags={"tls_certificate": "/nope/c.pem", "tls_key": "/nope/k.pem"})
    with pytest.raises(ConfigError, match="is not a directory"):
        load_config(flags={"org_dir": str(tmp_path / "missing")})


def test_names() -> None:
    assert env_name("max_queued") == "DESKHAND_RELAY_MAX_QUEUED"
    assert flag_name("max_queued") == "--max-queued"


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("12", int, 12),
        ("1.5", float, 1.5),
        ("3", float, 3.0),
        ("yes", bool, True),
        ("off", bool, False),
    ],
)
def test_parse_text(text: str, kind: type, value: object) -> None:
    assert parse_text(text, kind, "X") == value


def test_coerce_refuses_booleans_as_numbers() -> None:
    with pytest.raises(ConfigError):
        coerce(True, int, "x")
    with pytest.raises(ConfigError):
        coerce(True, float, "x")
    with pytest.raises(ConfigError):
        parse_text("maybe", bool, "X")
