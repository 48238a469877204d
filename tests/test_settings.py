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


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHAT_PUBLIC_URL": "ftp://chat.example"}, "public_url"),
        ({"CHAT_PUBLIC_URL": "https://chat.example/?x=1"}, "public_url"),
        ({"CHAT_MAIL_FROM": "not an address"}, "mail_from"),
        ({"CHAT_MAIL_FROM_NAME": "云顾问\r\nBcc: x@example.com"}, "mail_from_name"),
        ({"CHAT_MAIL_SMTP_SECURITY": "ssl3"}, "mail_smtp_security"),
        ({"CHAT_MAIL_MENTION_DELAY_SECONDS": "-1"}, "mail_mention_delay_seconds"),
        ({"CHAT_INVITATION_TTL_HOURS": "0"}, "invitation_ttl_hours"),
        ({"CHAT_MAIL_SMTP_CA_FILE": "/nonexistent/bank-ca.pem"}, "mail_smtp_ca_file"),
    ],
)
def test_bad_mail_settings_are_refused_naming_the_setting(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=env)


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


def test_mail_defaults_write_to_the_outbox_and_links_use_the_servers_address(tmp_path):
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path, "port": 9000})
    assert settings.mail_smtp_host is None
    assert settings.resolved_outbox_dir == tmp_path / "outbox"
    assert settings.resolved_public_url == "http://127.0.0.1:9000"
    assert load_settings(environ={"CHAT_PUBLIC_URL": "https://chat.example/"}).resolved_public_url == (
        "https://chat.example"
    )


def test_show_config_hides_the_smtp_password():
    settings = load_settings(environ={"CHAT_MAIL_SMTP_HOST": "smtp.example", "CHAT_MAIL_SMTP_PASSWORD": "S3cret!"})
    assert settings.public_view()["mail_smtp_password"] == "***"
    assert "S3cret" not in str(settings.public_view())


def test_ticketing_settings_are_checked_and_their_secrets_hidden():
    with pytest.raises(SettingsError, match="ticketing_token"):
        load_settings(environ={"CHAT_TICKETING_URL": "https://tickets.example"})
    with pytest.raises(SettingsError, match="ticketing_url"):
        load_settings(environ={"CHAT_TICKETING_URL": "ftp://tickets.example", "CHAT_TICKETING_TOKEN": "t"})
    with pytest.raises(SettingsError, match="ticketing_webhook_secret"):
        load_settings(environ={"CHAT_TICKETING_WEBHOOK_SECRET": "short"})
    settings = load_settings(
        environ={
            "CHAT_TICKETING_URL": "https://tickets.example/api/",
            "CHAT_TICKETING_TOKEN": "the-api-token",
            "CHAT_TICKETING_WEBHOOK_SECRET": "w" * 32,
        }
    )
    assert settings.ticketing_url == "https://tickets.example/api"
    view = settings.public_view()
    assert view["ticketing_token"] == "***" and view["ticketing_webhook_secret"] == "***"
    assert "the-api-token" not in str(view)


def test_show_config_hides_the_model_key():
    settings = load_settings(environ={**LLM, "CHAT_LLM_TIMEOUT_SECONDS": "4"})
    assert settings.llm_api_key == LLM["CHAT_LLM_API_KEY"] and settings.llm_timeout_seconds == 4
    view = settings.public_view()
    assert view["llm_api_key"] == "***" and view["llm_base_url"] == "https://api.deepseek.com"
    assert LLM["CHAT_LLM_API_KEY"] not in str(view)
