"""8BITMIME, SMTPUTF8 (RFC 6152, 6531) and DSN parameters (RFC 3461): what is
accepted is stored with the message; what is malformed gets 501/553/555."""
import pytest

import spoolfile
from smtpkit import simple_body, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "eightbit_dsn")
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def queue(srv, mail, rcpts, body=None):
    """MAIL line args, [(rcpt args)], body; asserts every 250; returns the Message."""
    body = body or simple_body("params")
    with srv.session() as c:
        r = c.cmd(f"MAIL FROM:{mail}".encode() if isinstance(mail, str) else b"MAIL FROM:" + mail)
        assert r == (250, "2.1.0"), r
        for rc in rcpts:
            line = f"RCPT TO:{rc}".encode()
            r = c.cmd(line)
            assert r == (250, "2.1.5"), (rc, r)
        assert c.cmd("DATA").code == 354
        c.send(body + b".\r\n")
        r = c.read_reply()
        assert r.queued_id, r
        c.quit()
    m = srv.message(r.queued_id)
    assert m.body == body
    return m


def refused(srv, lines, want):
    """Sends lines one by one; the last one must get want=(code, enh)."""
    with srv.session() as c:
        for line in lines[:-1]:
            assert c.cmd(line).code == 250, line
        r = c.cmd(lines[-1])
        assert r == want, (lines[-1], r)
        return r


# ---- 8BITMIME ----


def test_body_8bitmime_is_stored_as_8bit(srv):
    body = ("Subject: Grüße\r\nMessage-ID: <8@client.test>\r\n"
            "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Größe: \xe9\xe8 ok\r\n").encode("utf-8") + b"latin1 \xe9\r\n"
    m = queue(srv, "<s@sender.test> BODY=8BITMIME", ["<r@rcpt.test>"], body)
    assert m.body_type == spoolfile.BODY_8BITMIME and not m.smtputf8


def test_body_7bit_explicit(srv):
    m = queue(srv, "<s@sender.test> BODY=7bit", ["<r@rcpt.test>"])
    assert m.body_type == spoolfile.BODY_7BIT


@pytest.mark.parametrize("param, want", [
    ("BODY=9BIT", (501, "5.5.4")),
    ("BODY", (501, "5.5.4")),
    ("BODY=8BITMIME BODY=7BIT", (501, "5.5.4")),   # duplicate
    ("SIZE=abc", (501, "5.5.4")),
    ("SIZE=99999999999999999999999", (552, "5.3.4")),
    ("FROB=1", (555, "5.5.4")),
    ("SMTPUTF8=yes", (501, "5.5.4")),
])
def test_bad_mail_parameters(srv, param, want):
    refused(srv, [f"MAIL FROM:<s@sender.test> {param}"], want)


# ---- SMTPUTF8 ----


def test_smtputf8_addresses_are_accepted_and_flagged(srv):
    sender, rcpt = "jöran@bücher.test", "用户@例子.test"
    body = ("Subject: 你好\r\nMessage-ID: <u@client.test>\r\n"
            "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nü\r\n").encode()
    with srv.session() as c:
        assert c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8 BODY=8BITMIME".encode()) == (250, "2.1.0")
        assert c.cmd(f"RCPT TO:<{rcpt}>".encode()) == (250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(body + b".\r\n")
        r = c.read_reply()
        assert r.queued_id, r
    m = srv.message(r.queued_id)
    assert m.smtputf8 and m.flags & spoolfile.FLAG_SMTPUTF8
    assert m.body_type == spoolfile.BODY_8BITMIME
    assert m.sender == sender and [x.addr for x in m.rcpts] == [rcpt]
    assert f"\tfor <{rcpt}>;".encode() in m.prepend
    assert m.body == body


def test_ascii_message_without_smtputf8_has_no_flag(srv):
    m = queue(srv, "<s@sender.test>", ["<r@rcpt.test>"])
    assert not m.smtputf8 and m.flags == 0


def test_utf8_sender_without_smtputf8_is_553_5_6_7(srv):
    with srv.session() as c:
        r = c.cmd("MAIL FROM:<jöran@bücher.test>".encode())
        assert r == (553, "5.6.7"), r


def test_utf8_recipient_without_smtputf8_is_553_5_6_7(srv):
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")
        r = c.cmd("RCPT TO:<用户@例子.test>".encode())
        assert r == (553, "5.6.7"), r
        assert c.cmd("RCPT TO:<r@rcpt.test>") == (250, "2.1.5")


def test_invalid_utf8_address_is_501(srv):
    with srv.session() as c:
        r = c.cmd(b"MAIL FROM:<j\xc3\x28@b.test> SMTPUTF8")
        assert r == (501, "5.5.2"), r


# ---- DSN ----


def test_ret_and_envid_are_stored(srv):
    m = queue(srv, "<s@sender.test> RET=HDRS ENVID=QQ+2B314+3Dx", ["<r@rcpt.test>"])
    assert m.ret == spoolfile.RET_HDRS
    assert m.envid == "QQ+314=x"  # xtext-decoded
    m = queue(srv, "<s@sender.test> ret=full", ["<r@rcpt.test>"])
    assert m.ret == spoolfile.RET_FULL and m.envid is None
    m = queue(srv, "<s@sender.test>", ["<r@rcpt.test>"])
    assert m.ret is None and m.envid is None


def test_notify_and_orcpt_are_stored_per_recipient(srv):
    m = queue(srv, "<s@sender.test> RET=FULL", [
        "<a@rcpt.test> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a+2Bext@rcpt.test",
        "<b@rcpt.test> NOTIFY=NEVER",
        "<c@rcpt.test> notify=delay,success",
        "<d@rcpt.test>",
        "<e@rcpt.test> ORCPT=RFC822;Old+20Name@old.test NOTIFY=FAILURE",
    ])
    got = [(r.addr, r.notify_names(), r.orcpt_type, r.orcpt_addr) for r in m.rcpts]
    assert got == [
        ("a@rcpt.test", {"SUCCESS", "FAILURE", "DELAY"}, "rfc822", "a+ext@rcpt.test"),
        ("b@rcpt.test", {"NEVER"}, None, None),
        ("c@rcpt.test", {"DELAY", "SUCCESS"}, None, None),
        ("d@rcpt.test", None, None, None),
        ("e@rcpt.test", {"FAILURE"}, "RFC822", "Old Name@old.test"),
    ]
    assert m.rcpts[0].notify == (spoolfile.NOTIFY_SUCCESS | spoolfile.NOTIFY_FAILURE
                                 | spoolfile.NOTIFY_DELAY)
    assert m.rcpts[1].notify == spoolfile.NOTIFY_NEVER


def test_orcpt_utf8_type_is_decoded(srv):
    m = queue(srv, "<s@sender.test> SMTPUTF8", [r"<r@rcpt.test> ORCPT=utf-8;j\x{F6}ran@b.test"])
    assert (m.rcpts[0].orcpt_type, m.rcpts[0].orcpt_addr) == ("utf-8", "jöran@b.test")


@pytest.mark.parametrize("mail, rcpt, want", [
    ("RET=ALL", None, (501, "5.5.4")),
    ("RET=HDRS RET=FULL", None, (501, "5.5.4")),
    ("RET", None, (501, "5.5.4")),
    ("ENVID=bad+ZZ", None, (501, "5.5.4")),
    ("ENVID=" + "x" * 101, None, (501, "5.5.4")),
    ("ENVID=a+00b", None, (501, "5.5.4")),        # decodes to a control character
    ("", "NOTIFY=NEVER,SUCCESS", (501, "5.5.4")),
    ("", "NOTIFY=FAILURE,NEVER", (501, "5.5.4")),
    ("", "NOTIFY=SOMETIMES", (501, "5.5.4")),
    ("", "NOTIFY=SUCCESS,", (501, "5.5.4")),
    ("", "NOTIFY", (501, "5.5.4")),
    ("", "ORCPT=rfc822", (501, "5.5.4")),
    ("", "ORCPT=;a@b.test", (501, "5.5.4")),
    ("", "ORCPT=rfc822;", (501, "5.5.4")),
    ("", "ORCPT=rfc822;a+ZZ@b.test", (501, "5.5.4")),
    ("", "NOTIFY=FAILURE NOTIFY=DELAY", (501, "5.5.4")),
    ("", "FROB=1", (555, "5.5.4")),
])
def test_malformed_dsn_parameters(srv, mail, rcpt, want):
    if rcpt is None:
        refused(srv, [f"MAIL FROM:<s@sender.test> {mail}"], want)
    else:
        refused(srv, ["MAIL FROM:<s@sender.test>", f"RCPT TO:<r@rcpt.test> {rcpt}"], want)


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
