"""``schoolmon-collector notify test``: one Vietnamese test message per channel, sent at
once through the outbox to real receivers (aiosmtpd, local HTTP servers for the webhook,
Zalo and Apprise); ✓/✗ per channel with the reason, exit 1 when any failed."""
import subprocess
import sys

from schoolmon.collector.cli import main
from schoolmon.collector.notify.channels.webhook import verify
from schoolmon.collector.store import schema as db
from sqlalchemy import select

from tests.collector.notify.receivers import HttpReceiver

SECRET = "s3cret-webhook-key-for-tests"
TOKEN = "999:zalo-token-ABCDEFGHIJ"


def write_config(tmp_path, smtp_url, webhook_url, zalo_url, apprise_urls):
    path = tmp_path / "collector.toml"
    path.write_text("\n".join([
        "[store]", 'url = "sqlite:///%s"' % (tmp_path / "state.db"), "",
        "[notify]", 'smtp_url = "%s"' % smtp_url, 'smtp_from = "canhbao@laocai.edu.vn"',
        'webhook_url = "%s"' % webhook_url, 'webhook_secret = "%s"' % SECRET,
        'zalo_token = "%s"' % TOKEN, 'zalo_api_url = "%s"' % zalo_url,
        "apprise_urls = [%s]" % ", ".join('"%s"' % u for u in apprise_urls),
        "timeout = 5", ""]), encoding="utf-8")
    return str(path)


def test_notify_test_sends_on_every_channel(tmp_path, smtp_server, capsys):
    hooks = HttpReceiver(lambda r: (200, {"ok": True, "result": {"message_id": "1"}}))
    try:
        cfg = write_config(tmp_path, smtp_server.url, hooks.url + "/hook", hooks.url,
                           ["so=json://127.0.0.1:%d/apprise" % hooks.port])
        assert main(["notify", "test", "--config", cfg, "--channel", "email",
                     "--to", "kythuat@thbaothang.edu.vn"]) == 0
        assert main(["notify", "test", "--config", cfg, "--channel", "zalo",
                     "--to", "chat-1"]) == 0
        assert main(["notify", "test", "--config", cfg, "--channel", "webhook"]) == 0
        assert main(["notify", "test", "--config", cfg, "--channel", "apprise"]) == 0
        out = capsys.readouterr().out
        assert out.count("✓") == 4 and "đã gửi" in out
        [mail] = smtp_server.received
        assert mail.rcpt_tos == ["kythuat@thbaothang.edu.vn"]
        assert "thử gửi thông báo" in str(mail.message["Subject"])
        assert "hệ thống giám sát schoolmon" in mail.message.get_body(("plain",)).get_content()
        by_path = {r.path: r for r in hooks.got()}
        assert "Đây là tin nhắn thử" in by_path["/bot%s/sendMessage" % TOKEN].json()["text"]
        hook = by_path["/hook"]
        assert verify(hook.body, hook.headers, SECRET, float(hook.headers[
            "X-Schoolmon-Timestamp"]))
        assert "Đây là tin nhắn thử" in by_path["/apprise"].json()["message"]
        # each test is recorded in the outbox like any message
        engine = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
        with engine.connect() as conn:
            states = conn.execute(select(db.notifications.c.channel,
                                         db.notifications.c.state)).all()
        engine.dispose()
        assert sorted(states) == [("apprise", "sent"), ("email", "sent"), ("webhook", "sent"),
                                  ("zalo", "sent")]
    finally:
        hooks.stop()


def test_notify_test_reports_failures_with_reasons_and_exit_1(tmp_path, smtp_server, capsys):
    smtp_server.refuse("nobody@thbaothang.edu.vn")
    zalo = HttpReceiver(lambda r: (200, {"ok": False, "error_code": 400,
                                         "description": "chat_id không hợp lệ"}))
    try:
        cfg = write_config(tmp_path, smtp_server.url, "", zalo.url, [])
        assert main(["notify", "test", "--config", cfg, "--to",
                     "nobody@thbaothang.edu.vn"]) == 1
        out = capsys.readouterr().out
        assert "✗ email → nobody@thbaothang.edu.vn: Máy chủ thư từ chối người nhận (550" in out
        assert "✗ webhook → nobody@thbaothang.edu.vn: Kênh chưa được cấu hình " \
               "(notify.webhook_url)" in out
        assert "✗ zalo → nobody@thbaothang.edu.vn: Zalo báo lỗi: 400 chat_id không hợp lệ" in out
        assert "✗ apprise" in out
        assert TOKEN not in out and SECRET not in out
        assert main(["notify", "test", "--config", cfg, "--channel", "zalo", "--to", "c",
                     "--lang", "en"]) == 1
        assert "Zalo answered an error: 400" in capsys.readouterr().out
        # a failed test is dead at once: a running collector does not send it later
        engine = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
        with engine.connect() as conn:
            assert set(conn.execute(select(db.notifications.c.state)).scalars()) == {"dead"}
        engine.dispose()
    finally:
        zalo.stop()


def test_notify_test_without_recipient_says_so(tmp_path, capsys):
    cfg = write_config(tmp_path, "", "", "http://127.0.0.1:9", [])
    assert main(["notify", "test", "--config", cfg, "--channel", "email"]) == 1
    assert "chưa có người nhận: dùng --to" in capsys.readouterr().out


def test_console_script_help_lists_notify():
    got = subprocess.run([sys.executable, "-m", "schoolmon.collector.cli", "notify", "test",
                          "--help"], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and "--channel" in got.stdout and "--to" in got.stdout
