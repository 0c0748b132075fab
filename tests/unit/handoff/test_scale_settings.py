"""Scale-out settings: Rasa URL list, Redis channel, node id and TTL fail loudly when bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.errors import ConfigError
from handoff.settings import Settings


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HANDOFF_VAR_DIR": str(tmp_path), "HANDOFF_SECRET": "x" * 40, **extra}


def test_defaults_are_one_rasa_and_a_node_named_after_host_and_port(tmp_path: Path) -> None:
    s = Settings.from_env(_env(tmp_path, HANDOFF_PORT="8123"))
    assert s.rasa_urls == (s.rasa_url,) == ("http://127.0.0.1:5005",)
    assert s.node_id.endswith(":8123") and s.redis_url is None
    assert s.redis_channel == "loanbot-socketio" and s.node_ttl_seconds == 15
    assert s.rasa_connections == 4 and s.rasa_placement == "least-busy"


def test_connections_per_rasa_instance(tmp_path: Path) -> None:
    assert Settings.from_env(_env(tmp_path, HANDOFF_RASA_CONNECTIONS="4")).rasa_connections == 4


def test_placement_is_least_busy_on_one_node_and_the_hash_with_redis(tmp_path: Path) -> None:
    """Only the node that placed a session knows where: several nodes (the Redis manager)
    must compute the same instance, so they keep to the hash unless told otherwise."""
    assert Settings.from_env(_env(tmp_path)).rasa_placement == "least-busy"
    redis = {"HANDOFF_REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert Settings.from_env(_env(tmp_path, **redis)).rasa_placement == "hash"
    assert Settings.from_env(_env(tmp_path, HANDOFF_RASA_PLACEMENT="hash")).rasa_placement \
        == "hash"
    assert Settings.from_env(_env(tmp_path, HANDOFF_RASA_PLACEMENT="least-busy",
                                  **redis)).rasa_placement == "least-busy"
    with pytest.raises(ConfigError, match="HANDOFF_RASA_PLACEMENT"):
        Settings.from_env(_env(tmp_path, HANDOFF_RASA_PLACEMENT="random"))


def test_rasa_urls_list_wins_and_first_is_rasa_url(tmp_path: Path) -> None:
    s = Settings.from_env(_env(tmp_path, HANDOFF_RASA_URL="http://x:1",
                               HANDOFF_RASA_URLS=" http://a:5005/, http://b:5005 "))
    assert s.rasa_urls == ("http://a:5005", "http://b:5005") and s.rasa_url == "http://a:5005"


@pytest.mark.parametrize("name,value", [
    ("HANDOFF_RASA_URLS", ","),
    ("HANDOFF_RASA_URLS", "http://a:1,ftp://b"),
    ("HANDOFF_RASA_URLS", "http://a:1,http://a:1"),
    ("HANDOFF_RASA_CONNECTIONS", "0"),
    ("HANDOFF_RASA_CONNECTIONS", "many"),
    ("HANDOFF_RASA_CONNECTIONS", "1001"),
    ("HANDOFF_NODE_ID", "node a"),
    ("HANDOFF_NODE_TTL", "1"),
    ("HANDOFF_REDIS_CHANNEL", "a/b"),
    ("HANDOFF_REDIS_URL", "http://127.0.0.1:6379"),
])
def test_bad_scale_values_fail_loudly(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(_env(tmp_path, **{name: value}))


def test_scale_values_are_read(tmp_path: Path) -> None:
    s = Settings.from_env(_env(tmp_path, HANDOFF_REDIS_URL="redis://127.0.0.1:6379/0",
                               HANDOFF_REDIS_CHANNEL="lender-a", HANDOFF_NODE_ID="gw-1",
                               HANDOFF_NODE_TTL="20"))
    assert (s.redis_url, s.redis_channel, s.node_id, s.node_ttl_seconds) == (
        "redis://127.0.0.1:6379/0", "lender-a", "gw-1", 20)
