"""Settings: the example file documents the defaults; bad values name themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatserver.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_config_is_valid_and_shows_the_defaults():
    from_file = load_settings(ROOT / "config" / "example.toml", environ={})
    assert from_file == Settings()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHAT_PORT": "70000"}, "port"),
        ({"CHAT_MAX_TEXT_CHARS": "0"}, "max_text_chars"),
        ({"CHAT_JWT_ALGORITHM": "none"}, "jwt_algorithm"),
        ({"CHAT_JWT_SECRET": "short"}, "jwt_secret"),
        ({"CHAT_DEMO": "perhaps"}, "demo"),
        ({"CHAT_NO_SUCH_THING": "1"}, "CHAT_NO_SUCH_THING"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=env)


def test_lists_come_from_comma_separated_env_values():
    settings = load_settings(environ={"CHAT_ALLOWED_ORIGINS": "https://a.example, https://b.example"})
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]


def test_a_missing_or_broken_config_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(tmp_path / "missing.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken, environ={})


def test_an_unsupported_store_url_is_refused_naming_it():
    with pytest.raises(SettingsError, match="store_url"):
        load_settings(environ={"CHAT_STORE_URL": "mongodb://u:pw@db.example/chat"})


def test_show_config_hides_a_password_inside_a_url():
    settings = Settings.model_construct(
        **{**Settings().model_dump(), "store_url": "mongodb://ops:S3cret@db:27017/chat"}
    )
    shown = settings.public_view()["store_url"]
    assert "S3cret" not in shown and shown == "mongodb://ops:***@db:27017/chat"


LLM = {"CHAT_LLM_BASE_URL": "https://api.deepseek.com", "CHAT_LLM_API_KEY": "sk-0123456789abcdef"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({**LLM, "CHAT_LLM_BASE_URL": "api.deepseek.com"}, "llm_base_url"),
        ({**LLM, "CHAT_LLM_BASE_URL": "https://u:sk-1@api.deepseek.com"}, "llm_base_url"),
        ({"CHAT_LLM_BASE_URL": "https://api.deepseek.com"}, "llm_api_key: needed"),
        ({**LLM, "CHAT_LLM_TIMEOUT_SECONDS": "9.5"}, "llm_timeout_seconds: must be at least 1 second shorter"),
        ({**LLM, "CHAT_BOT_TIMEOUT_SECONDS": "3"}, "llm_timeout_seconds"),
    ],
)
def test_the_model_settings_are_checked(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=env)


def test_show_config_hides_the_model_key():
    settings = load_settings(environ={**LLM, "CHAT_LLM_TIMEOUT_SECONDS": "4"})
    assert settings.llm_api_key == LLM["CHAT_LLM_API_KEY"] and settings.llm_timeout_seconds == 4
    view = settings.public_view()
    assert view["llm_api_key"] == "***" and view["llm_base_url"] == "https://api.deepseek.com"
    assert LLM["CHAT_LLM_API_KEY"] not in str(view)
