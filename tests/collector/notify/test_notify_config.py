"""notify.* keys: bad values stop the collector at start naming the key (and never the
secret); the CLI exits 2 on them."""
import pytest
from schoolmon.collector.cli import main
from schoolmon.collector.config import load_config
from schoolmon.protocol.settings import ConfigError


def test_an_apprise_url_apprise_does_not_take_is_refused_by_position_not_shown():
    with pytest.raises(ConfigError) as err:
        load_config(env={"SCHOOLMON_NOTIFY_APPRISE_URLS": "so=json://127.0.0.1:8/x,"
                         "tg=nosuchscheme://bot-Token-Secret-123/456"}, demo=True)
    text = str(err.value)
    assert "notify.apprise_urls" in text and "[2]" in text and "Apprise không nhận" in text
    assert "bot-Token-Secret-123" not in text


def test_a_webhook_without_its_secret_is_refused():
    with pytest.raises(ConfigError) as err:
        load_config(env={}, demo=True, overrides={"notify": {
            "webhook_url": "https://so.example.gov.vn/hook"}})
    assert "notify.webhook_secret" in str(err.value)


@pytest.mark.parametrize("url", ["http://mail.example:25", "smtp://", "smtps://[::1"])
def test_a_bad_smtp_url_is_refused_without_its_password(url):
    with pytest.raises(ConfigError) as err:
        load_config(env={"SCHOOLMON_NOTIFY_SMTP_URL": url}, demo=True)
    assert "notify.smtp_url" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(env={"SCHOOLMON_NOTIFY_SMTP_URL": "ftp://u:Mat-Khau-9x@mail.example"},
                    demo=True)
    assert "Mat-Khau-9x" not in str(err.value)


def test_good_keys_load_and_env_wins():
    cfg = load_config(env={"SCHOOLMON_NOTIFY_ZALO_TOKEN": "123:abc",
                           "SCHOOLMON_NOTIFY_APPRISE_URLS": "so=json://127.0.0.1:8/x",
                           "SCHOOLMON_NOTIFY_SMTP_URL": "smtp+starttls://u:p@mail.example:587",
                           "SCHOOLMON_NOTIFY_WEBHOOK_URL": "https://so.example/hook",
                           "SCHOOLMON_NOTIFY_WEBHOOK_SECRET": "0123456789abcdefXYZ"},
                      demo=True)
    assert cfg.notify.zalo_token == "123:abc"
    assert cfg.notify.apprise_urls == ["so=json://127.0.0.1:8/x"]
    assert cfg.notify.max_attempts == 10 and cfg.notify.enabled is True


def test_cli_notify_test_exits_2_on_a_bad_key(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[notify]\nwebhook_url = "https://so.example/hook"\n', encoding="utf-8")
    assert main(["notify", "test", "--config", str(path)]) == 2
    assert "notify.webhook_secret" in capsys.readouterr().err
