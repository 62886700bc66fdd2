"""Settings precedence (flags > environment > config file > defaults) and config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_cloudevents.config import DEFAULT_DATABASE_URL, ConfigError, load_settings


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.port == 8080
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.routes is None


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "dora.yaml"
    config.write_text("port: 9000\nhost: 0.0.0.0\ndatabase_url: sqlite:///file.db\n")
    environ = {"DORA_PORT": "9100", "DORA_CONFIG": str(config)}
    settings = load_settings(environ=environ, overrides={"port": 9200, "host": None})
    assert settings.port == 9200  # flag
    assert settings.host == "0.0.0.0"  # config file (flag not given)
    assert settings.database_url == "sqlite:///file.db"
    assert load_settings(environ=environ).port == 9100  # environment beats the file


def test_tokens_from_environment_are_comma_separated_and_secret() -> None:
    settings = load_settings(environ={"DORA_INGEST_TOKENS": "tok-1, tok-2,,tok-3"})
    assert [t.get_secret_value() for t in settings.ingest_tokens] == ["tok-1", "tok-2", "tok-3"]
    assert "tok-" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("port: eighty\n", ["port"]),
        ("bogus_setting: 1\n", ["bogus_setting", "Extra inputs"]),
        ("routes:\n  - match: {type: x}\n", ["routes.0.to", "required"]),
        ("- a\n- b\n", ["top level must be a mapping"]),
        ("port: [1\n", ["not valid YAML"]),
    ],
)
def test_invalid_config_is_explained(tmp_path: Path, text: str, words: list[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    for word in words:
        assert word in str(error.value)
    assert str(config) in str(error.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_errors_name_the_layer_the_bad_value_came_from(tmp_path: Path) -> None:
    config = tmp_path / "good.yaml"
    config.write_text("host: 0.0.0.0\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={"DORA_PORT": "abc"})
    assert "environment variable DORA_PORT: port:" in str(error.value)
    assert str(config) not in str(error.value)
