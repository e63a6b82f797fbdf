"""Each channel through its real boundary: a real SMTP server (aiosmtpd), local HTTP
servers playing the webhook receiver, Zalo's Bot API and an Apprise json:// target."""
import pytest
from schoolmon.collector.notify.channels import DeliveryError
from schoolmon.collector.notify.channels.apprise_urls import AppriseChannel, names
from schoolmon.collector.notify.channels.mail import EmailChannel
from schoolmon.collector.notify.channels.webhook import (
    WebhookChannel,
    refusal,
    signature,
    verify,
)
from schoolmon.collector.notify.channels.zalo import MAX_TEXT, ZaloChannel, fit_text
from schoolmon.collector.notify.outbox import Message

from tests.collector.notify.receivers import HttpReceiver
from tests.servers import free_port

SUBJECT = "[Cảnh báo] Trường TH Bảo Thắng mất kết nối trong giờ học"
BODY = ("Trường Tiểu học Bảo Thắng (Lào Cai): mọi thiết bị mất kết nối từ 10:00.\n"
        "Đề nghị cán bộ kiêm nhiệm kiểm tra router và đường truyền Internet.")
SECRET = "wh-s3cret-Đà-Nẵng-0123456789"
TOKEN = "1234567890:zalo-bot-token-ABCDEFGH"


def message(channel: str, recipient: str, **kw) -> Message:
    return Message(dedup_key="k:%s:%s" % (channel, recipient), channel=channel,
                   recipient=recipient, subject=kw.pop("subject", SUBJECT),
                   body=kw.pop("body", BODY), **kw)


# ----------------------------------------------------------------------------- e-mail
def test_email_arrives_with_vietnamese_subject_and_body(smtp_server):
    ch = EmailChannel(smtp_server.url, '"Sở GD&ĐT Lào Cai" <canhbao@laocai.edu.vn>', 10)
    ch.send(message("email", "kythuat@thbaothang.edu.vn"))
    [got] = smtp_server.received
    assert got.mail_from == "canhbao@laocai.edu.vn"
    assert got.rcpt_tos == ["kythuat@thbaothang.edu.vn"]
    assert str(got.message["Subject"]) == SUBJECT
    assert "Sở GD&ĐT Lào Cai" in str(got.message["From"])
    assert str(got.message["To"]) == "kythuat@thbaothang.edu.vn"
    plain = got.message.get_body(("plain",))
    assert plain.get_content().strip() == BODY
    html = got.message.get_body(("html",))
    assert "Bảo Thắng" in html.get_content()


def test_email_long_vietnamese_subjects_keep_every_space(smtp_server):
    """Python's header folder dropped the space where it split a long subject into encoded
    words ("200 trườngmất kết nối"); subjects of every length arrive as written."""
    ch = EmailChannel(smtp_server.url, "canhbao@laocai.edu.vn", 10)
    words = "Đã khắc phục: 200 trường mất kết nối — Bát Xát, Bảo Thắng, Sa Pa và Mường Khương"
    subjects = ["[schoolmon] " + words[:n] for n in range(20, len(words) + 1, 9)]
    for i, subject in enumerate(subjects):
        ch.send(message("email", "a%d@x.vn" % i, subject=subject))
    assert [str(r.message["Subject"]) for r in smtp_server.received] == subjects


def test_email_message_id_is_the_same_for_the_same_message(smtp_server):
    ch = EmailChannel(smtp_server.url, "canhbao@laocai.edu.vn", 10)
    ch.send(message("email", "a@x.vn"))
    ch.send(message("email", "a@x.vn"))
    a, b = smtp_server.received
    assert a.message["Message-ID"] == b.message["Message-ID"]


def test_email_refused_recipient_is_permanent_with_the_server_reply(smtp_server):
    smtp_server.refuse("nobody@thbaothang.edu.vn")
    ch = EmailChannel(smtp_server.url, "canhbao@laocai.edu.vn", 10)
    with pytest.raises(DeliveryError) as err:
        ch.send(message("email", "nobody@thbaothang.edu.vn"))
    assert err.value.code == "refused" and err.value.permanent
    assert "550" in err.value.detail and "mailbox unavailable" in err.value.detail
    # the other recipient of the same alert still gets it
    ch.send(message("email", "kythuat@thbaothang.edu.vn"))
    assert [r.rcpt_tos for r in smtp_server.received] == [["kythuat@thbaothang.edu.vn"]]


def test_email_server_down_is_a_retryable_failure_without_the_password():
    port = free_port()  # nothing listens there
    ch = EmailChannel("smtp://canhbao:Mat-Khau-Bi-Mat-9@127.0.0.1:%d" % port,
                      "canhbao@laocai.edu.vn", 5)
    with pytest.raises(DeliveryError) as err:
        ch.send(message("email", "a@x.vn"))
    assert err.value.code == "unreachable" and not err.value.permanent
    assert "127.0.0.1:%d" % port in str(err.value)
    assert "Mat-Khau-Bi-Mat-9" not in str(err.value)


def test_email_to_something_that_is_no_address_is_refused_for_good(smtp_server):
    with pytest.raises(DeliveryError) as err:
        EmailChannel(smtp_server.url, "x@y.vn", 5).send(message("email", "Nguyễn Văn A"))
    assert err.value.code == "bad_message" and err.value.permanent
    assert smtp_server.received == []


def test_email_not_configured():
    with pytest.raises(DeliveryError) as err:
        EmailChannel("", "x@y", 5).send(message("email", "a@x.vn"))
    assert err.value.code == "not_configured" and "notify.smtp_url" in err.value.detail


# ----------------------------------------------------------------------------- webhook
def test_webhook_is_signed_and_a_receiver_verifies_it():
    got = []
    now = [1_767_225_600.0]

    def answer(req):
        ok = verify(req.body, req.headers, SECRET, now[0], tolerance=300)
        got.append(ok)
        return (200 if ok else 401), {}

    rx = HttpReceiver(answer)
    try:
        payload = {"alerts": [{"rule": "school_offline", "school": "TH-BT-01",
                               "text": "Trường Tiểu học Bảo Thắng mất kết nối"}]}
        ch = WebhookChannel(rx.url + "/hook", SECRET, 10, clock=lambda: now[0])
        ch.send(message("webhook", "so", payload=payload))
        [req] = rx.got()
        assert got == [True]
        assert req.json() == payload
        assert req.headers["X-Schoolmon-Timestamp"] == "1767225600"
        assert req.headers["X-Schoolmon-Signature"] == signature(SECRET, "1767225600", req.body)
        assert len(req.headers["X-Schoolmon-Delivery"]) == 32
        # a replay ten minutes later is refused; so is a body changed on the way
        assert not verify(req.body, req.headers, SECRET, now[0] + 600, tolerance=300)
        assert "gửi lại" in refusal(req.body, req.headers, SECRET, now[0] + 600)
        assert not verify(req.body + b" ", req.headers, SECRET, now[0])
        assert not verify(req.body, req.headers, "another-secret", now[0])
        assert not verify(req.body, {}, SECRET, now[0])
        # a wrong secret on the sender's side: the receiver's 401 is the failure
        with pytest.raises(DeliveryError) as err:
            WebhookChannel(rx.url, "wrong-secret-xyz", 10,
                           clock=lambda: now[0]).send(message("webhook", "so"))
        assert err.value.code == "http_status" and err.value.detail.startswith("401")
    finally:
        rx.stop()


def test_webhook_500_is_a_failure_with_the_status():
    rx = HttpReceiver(lambda r: (500, {"error": "db down"}))
    try:
        with pytest.raises(DeliveryError) as err:
            WebhookChannel(rx.url + "/x?key=q-secret-9", SECRET, 10).send(message("webhook", "so"))
        assert err.value.code == "http_status" and err.value.detail.startswith("500")
        assert "q-secret-9" not in str(err.value) and SECRET not in str(err.value)
    finally:
        rx.stop()


def test_webhook_that_hangs_times_out():
    rx = HttpReceiver()
    rx.hold()
    try:
        with pytest.raises(DeliveryError) as err:
            WebhookChannel(rx.url, SECRET, 0.5).send(message("webhook", "so"))
        assert err.value.code == "timeout"
        assert rx.arrived.is_set()
    finally:
        rx.stop()


def test_webhook_down_is_unreachable():
    with pytest.raises(DeliveryError) as err:
        WebhookChannel("http://127.0.0.1:%d/" % free_port(), SECRET, 5).send(
            message("webhook", "so"))
    assert err.value.code == "unreachable"


# ----------------------------------------------------------------------------- Zalo
def test_zalo_sends_chat_id_and_text_to_the_bot_api():
    rx = HttpReceiver(lambda r: (200, {"ok": True, "result": {"message_id": "m1",
                                                             "date": 1767225600000}}))
    try:
        ZaloChannel(TOKEN, rx.url, 10).send(message("zalo", "chat-8421"))
        [req] = rx.got()
        assert req.path == "/bot%s/sendMessage" % TOKEN
        doc = req.json()
        assert doc["chat_id"] == "chat-8421"
        assert doc["text"] == SUBJECT + "\n" + BODY
    finally:
        rx.stop()


def test_zalo_error_answer_is_a_failure_with_zalo_description_and_no_token():
    rx = HttpReceiver(lambda r: (400, {"ok": False, "error_code": 403,
                                       "description": "Bot bị chặn bởi người dùng " + TOKEN}))
    try:
        with pytest.raises(DeliveryError) as err:
            ZaloChannel(TOKEN, rx.url, 10).send(message("zalo", "chat-8421"))
        assert err.value.code == "zalo"
        assert "403" in err.value.detail and "Bot bị chặn" in err.value.detail
        assert TOKEN not in str(err.value)
    finally:
        rx.stop()


def test_zalo_ok_false_with_http_200_is_a_failure():
    rx = HttpReceiver(lambda r: (200, {"ok": False, "error_code": 429,
                                       "description": "Too many requests"}))
    try:
        with pytest.raises(DeliveryError) as err:
            ZaloChannel(TOKEN, rx.url, 10).send(message("zalo", "c1"))
        assert err.value.code == "zalo" and "429" in err.value.detail
    finally:
        rx.stop()


def test_zalo_not_json_is_a_bad_answer():
    rx = HttpReceiver(lambda r: (200, b"<html>gateway</html>"))
    try:
        with pytest.raises(DeliveryError) as err:
            ZaloChannel(TOKEN, rx.url, 10).send(message("zalo", "c1"))
        assert err.value.code == "bad_answer"
    finally:
        rx.stop()


def test_zalo_long_text_is_cut_at_a_line_to_2000_units():
    lines = ["%d. Trường Tiểu học Bát Xát số %d mất kết nối" % (i, i) for i in range(200)]
    text = fit_text("\n".join(lines))
    assert len(text.encode("utf-16-le")) // 2 <= MAX_TEXT
    assert text.endswith("dòng / lines)")
    kept = text.split("\n")[:-1]
    assert kept == lines[:len(kept)]
    assert "(+%d dòng" % (200 - len(kept)) in text
    assert fit_text("ngắn") == "ngắn"
    assert len(fit_text("đ" * 5000).encode("utf-16-le")) // 2 <= MAX_TEXT


def test_zalo_down_hides_the_token():
    with pytest.raises(DeliveryError) as err:
        ZaloChannel(TOKEN, "http://127.0.0.1:%d" % free_port(), 5).send(message("zalo", "c"))
    assert err.value.code == "unreachable" and TOKEN not in str(err.value)


# ----------------------------------------------------------------------------- Apprise
def test_apprise_json_url_reaches_a_local_server_one_object_per_url():
    rx = HttpReceiver()
    try:
        dead = free_port()
        entries = ["so=json://127.0.0.1:%d/so" % rx.port, "json://127.0.0.1:%d/x" % dead]
        assert names(entries) == ["so", "2"]
        ch = AppriseChannel(entries, 5)
        ch.send(message("apprise", "so"))
        [req] = rx.got()
        doc = req.json()
        assert doc["title"] == SUBJECT and doc["message"] == BODY
        with pytest.raises(DeliveryError) as err:
            ch.send(message("apprise", "2"))
        assert err.value.code == "apprise"
        assert str(dead) not in str(err.value)  # every part of the URL is scrubbed
        assert len(rx.got()) == 1  # the failing URL did not resend to the good one
        with pytest.raises(DeliveryError) as err:
            ch.send(message("apprise", "nobody"))
        assert err.value.code == "unknown_recipient" and err.value.permanent
    finally:
        rx.stop()


def test_apprise_url_it_does_not_take_is_not_configured():
    ch = AppriseChannel(["bad=nosuchscheme://whatever"], 5)
    with pytest.raises(DeliveryError) as err:
        ch.send(message("apprise", "bad"))
    assert err.value.code == "not_configured" and "[1]" in err.value.detail



# ----------------------------------------------------------------------------- TLS, AUTH
@pytest.fixture
def certs(tmp_path, monkeypatch):
    from tests.servers import make_test_pki
    folder = tmp_path / "pki"
    folder.mkdir()
    make_test_pki(str(folder))
    # ssl.create_default_context() trusts what OpenSSL's default paths say: the test CA
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / "ca.crt"))
    return str(folder)


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_email_over_tls_with_login(certs, tls):
    from tests.collector.notify.receivers import SmtpServer
    server = SmtpServer(tls=tls, certs=certs, login=("canhbao", "Mật-khẩu/9@x"))
    try:
        ch = EmailChannel(server.url_with("canhbao", "Mật-khẩu/9@x"), "canhbao@laocai.edu.vn",
                          10)
        ch.send(message("email", "kythuat@thbaothang.edu.vn"))
        [got] = server.received
        assert str(got.message["Subject"]) == SUBJECT and server.logins == ["canhbao"]
        wrong = EmailChannel(server.url_with("canhbao", "sai-mat-khau-123"),
                             "canhbao@laocai.edu.vn", 10)
        with pytest.raises(DeliveryError) as err:
            wrong.send(message("email", "kythuat@thbaothang.edu.vn"))
        assert err.value.code == "smtp" and err.value.detail.startswith("535")
        assert "sai-mat-khau-123" not in str(err.value)
    finally:
        server.stop()


def test_email_tls_to_an_untrusted_certificate_fails(tmp_path):
    from tests.collector.notify.receivers import SmtpServer
    from tests.servers import make_test_pki
    make_test_pki(str(tmp_path))  # a CA nobody trusts here
    server = SmtpServer(tls="smtps", certs=str(tmp_path))
    try:
        with pytest.raises(DeliveryError) as err:
            EmailChannel(server.url, "canhbao@laocai.edu.vn", 10).send(message("email", "a@x.vn"))
        assert err.value.code == "unreachable" and "CERTIFICATE_VERIFY_FAILED" in err.value.detail
        assert server.received == []
    finally:
        server.stop()
