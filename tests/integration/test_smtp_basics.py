"""SMTP basics against the real celerd: greeting, EHLO/HELO, the simple verbs,
sequence errors, and what a queued message looks like in the spool.

One celerd for the module, with several Listen addresses for the options that
change the greeting or the protocol. After every test a normal message must
still get through; the last test stops celerd and wants exit status 0 (ASan and
LeakSanitizer clean).
"""
import datetime
import re
import struct
import time

import pytest

import spoolfile
from smtpkit import HOSTNAME, simple_body, start_server

RECEIVED_DATE = r"(?P<date>[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000)"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "basics", listens={
        "static": ("127.0.0.1", 'Static_Banner = "welcome.example says hello"'),
        "bannerhost": ("127.0.0.1", 'Banner_Hostname = "banner.example"'),
        "strict": ("127.0.0.1", 'Require_EHLO = true\nRelay_Hosts = ( "127.0.0.1" )'),
        "sized": ("127.0.0.1", 'Max_Message_Size = 10k\nRelay_Hosts = ( "127.0.0.1" )'),
    })
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def received_date_ok(text):
    dt = datetime.datetime.strptime(text, "%a, %d %b %Y %H:%M:%S +0000")
    dt = dt.replace(tzinfo=datetime.timezone.utc)
    return abs(dt.timestamp() - time.time()) < 120


# ---- the spool reader itself (no celerd) ----


DOC_EXAMPLE = bytes.fromhex(
    "43454c5253504c01"
    "4535000000"
    "0110" + b"00/00-7-00000001".hex() +
    "0208" "00401e18240a0600"
    "070100"
    "0308" + b"s@x.test".hex() +
    "040a0108" + b"a@b.test".hex() +
    "0e561fa9"
    "42080000000400000000000000" "3ef5dc7e"
    "48690d0a"
    "9bb26a05"
    "4806000000" + b"X: 1\r\n".hex() + "9ac5f102"
    "5a100000006e00000000000000"
    "9bb26a05276a4b50286d6e5d"
    "5011000000"
    "010401000000"
    "0609010400000000020101"
    "7dba900b")


def test_spool_reader_decodes_the_documented_example():
    m = spoolfile.decode(DOC_EXAMPLE)
    assert (m.id, m.sender, m.body, m.prepend) == ("00/00-7-00000001", "s@x.test", b"Hi\r\n",
                                                   b"X: 1\r\n")
    assert m.ctime_us == 1700000000000000 and m.body_type == spoolfile.BODY_7BIT
    assert [r.addr for r in m.rcpts] == ["a@b.test"] and m.rcpts[0].notify is None
    assert m.attempts == 1 and m.rcpts[0].state == spoolfile.STATE_DELIVERED
    assert m.end_off == 0x6E and m.valid_len == len(DOC_EXAMPLE)
    assert spoolfile.crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize("damage, status", [
    (lambda b: b[:0x50], "incomplete"),                         # cut inside the body
    (lambda b: b[:0x6E], "incomplete"),                         # no END yet
    (lambda b: b[:0x20] + bytes([b[0x20] ^ 1]) + b[0x21:], "corrupt"),   # envelope byte
    (lambda b: b[:0x58] + bytes([b[0x58] ^ 1]) + b[0x59:], "corrupt"),   # body byte
    (lambda b: b[:0x46] + spoolfile.record(0x42, struct.pack("<Q", 2**64 - 1)) + b[0x57:],
     "incomplete"),                                              # body still streaming
])
def test_spool_reader_classifies_damage(damage, status):
    with pytest.raises(spoolfile.SpoolError) as e:
        spoolfile.decode(damage(DOC_EXAMPLE))
    assert e.value.status == status


def test_spool_reader_ignores_torn_progress_tail():
    m = spoolfile.decode(DOC_EXAMPLE[:-3])
    assert m.tail_damaged and m.valid_len == 0x87 and m.attempts is None


# ---- greeting ----


def test_greeting_names_the_host(srv):
    with srv.connect() as c:
        g = c.greeting()
        assert g.code == 220 and g.lines == [f"{HOSTNAME} ESMTP celer"]
        assert g.enh is None  # RFC 2034: the greeting carries no enhanced code


def test_static_banner_is_sent_as_given(srv):
    with srv.connect("static") as c:
        g = c.greeting()
        assert g.code == 220 and g.lines == ["welcome.example says hello"]


def test_banner_hostname_replaces_the_host_in_the_greeting(srv):
    with srv.connect("bannerhost") as c:
        g = c.greeting()
        assert g.code == 220 and g.lines == ["banner.example ESMTP celer"]
        # the EHLO reply still names the real host
        assert c.ehlo().lines[0] == HOSTNAME


# ---- EHLO / HELO ----


def test_ehlo_lists_the_core_extensions(srv):
    with srv.session() as c:
        r = c.ehlo("client.test")
        assert r.lines[0] == HOSTNAME
        caps = {l.split(" ", 1)[0]: l for l in r.lines[1:]}
        assert set(caps) == {"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "CHUNKING",
                             "BINARYMIME", "ENHANCEDSTATUSCODES", "DSN"}, r.lines
        assert caps["SIZE"] == "SIZE"  # no fixed limit (RFC 1870: no parameter)
        c.quit()


def test_ehlo_size_announces_max_message_size(srv):
    with srv.session("sized") as c:
        r = c.ehlo()
        assert "SIZE 10240" in r.lines[1:], r.lines
        assert not any(l.startswith(("STARTTLS", "AUTH", "XCLIENT")) for l in r.lines)


def test_ehlo_without_domain_is_a_syntax_error(srv):
    with srv.connect() as c:
        c.greeting()
        assert c.cmd("EHLO") == (501, "5.5.4")
        assert c.cmd("HELO") == (501, "5.5.4")
        assert c.cmd("EHLO client.test").code == 250


def test_helo_session_is_plain_smtp(srv):
    body = simple_body("helo")
    with srv.connect() as c:
        c.greeting()
        r = c.cmd("HELO old.client.test")
        assert r.code == 250 and r.lines == [HOSTNAME]
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], body)
        assert r.code == 250 and r.queued_id
        c.quit()
    m = srv.message(r.queued_id)
    assert m.helo == "old.client.test" and m.body == body
    assert b"\r\n\tby mx.test.example (celer) with SMTP id " in m.prepend


def test_esmtp_parameter_after_helo_is_refused(srv):
    with srv.connect() as c:
        c.greeting()
        c.cmd("HELO old.client.test")
        assert c.cmd("MAIL FROM:<s@sender.test> BODY=8BITMIME") == (503, "5.5.1")
        assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")


# ---- simple verbs ----


def test_noop_help_vrfy_expn(srv):
    with srv.session() as c:
        assert c.cmd("NOOP") == (250, "2.0.0")
        r = c.cmd("HELP")
        assert r == (214, "2.0.0") and r.msg
        r = c.cmd("VRFY postmaster")
        assert r == (252, "2.5.0"), r
        assert c.cmd("EXPN staff") == (502, "5.5.1")
        assert c.cmd("noop") == (250, "2.0.0")  # verbs are case-insensitive
        c.quit()


def test_quit_says_bye_and_closes(srv):
    c = srv.session()
    r = c.cmd("QUIT")
    assert r == (221, "2.0.0")
    assert c.wait_closed(3.0)
    assert c.buf == b""


def test_unknown_command_is_500_and_session_goes_on(srv):
    with srv.session() as c:
        r = c.cmd("FROB the widget")
        assert r == (500, "5.5.1"), r
        assert c.cmd("NOOP") == (250, "2.0.0")
        rej = srv.rejects_for(c)
        assert rej[0]["E"] == "500" and rej[0]["reason"].startswith("500 5.5.1 ")


def test_rset_ends_the_transaction(srv):
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<a@sender.test>") == (250, "2.1.0")
        assert c.cmd("RCPT TO:<r@rcpt.test>") == (250, "2.1.5")
        assert c.cmd("RSET") == (250, "2.0.0")
        assert c.cmd("RCPT TO:<r@rcpt.test>") == (503, "5.5.1")  # no MAIL any more
        assert c.cmd("MAIL FROM:<b@sender.test>") == (250, "2.1.0")  # not "nested"
        c.quit()


# ---- sequence errors ----


def test_mail_before_helo_with_require_ehlo(srv):
    with srv.connect("strict") as c:
        c.greeting()
        r = c.cmd("MAIL FROM:<s@sender.test>")
        assert r == (503, "5.5.1"), r
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")


def test_mail_before_helo_allowed_by_default(srv):
    with srv.connect() as c:
        c.greeting()
        assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")


def test_nested_mail_is_503(srv):
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<a@sender.test>") == (250, "2.1.0")
        r = c.cmd("MAIL FROM:<b@sender.test>")
        assert r == (503, "5.5.1") and "Nested" in r.msg


def test_rcpt_before_mail_is_503(srv):
    with srv.session() as c:
        assert c.cmd("RCPT TO:<r@rcpt.test>") == (503, "5.5.1")


def test_data_without_rcpt_is_554(srv):
    with srv.session() as c:
        assert c.cmd("DATA") == (503, "5.5.1")  # no MAIL either
        assert c.cmd("MAIL FROM:<a@sender.test>") == (250, "2.1.0")
        r = c.cmd("DATA")
        assert r == (554, "5.5.1"), r
        # the transaction is still open: a recipient can still come
        assert c.cmd("RCPT TO:<r@rcpt.test>") == (250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: late\r\n\r\nx\r\n.\r\n")
        assert c.read_reply().queued_id


# ---- a queued message in the spool ----


def test_queued_message_is_stored_exactly(srv):
    body = (b"From: <s@sender.test>\r\nTo: <r@rcpt.test>\r\nSubject: dots\r\n"
            b"Message-ID: <dots@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n"
            b".leading dot\r\n..two dots\r\n.\t\r\nlast line\r\n")
    wire = (b"From: <s@sender.test>\r\nTo: <r@rcpt.test>\r\nSubject: dots\r\n"
            b"Message-ID: <dots@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n"
            b"..leading dot\r\n...two dots\r\n..\t\r\nlast line\r\n.\r\n")
    with srv.session(helo="client.test") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")
        assert c.cmd("RCPT TO:<r@rcpt.test>") == (250, "2.1.5")
        r = c.cmd("DATA")
        assert r.code == 354 and r.enh is None
        c.send(wire)
        r = c.read_reply()
        c.quit()
    assert r.code == 250 and r.enh == "2.0.0", r
    msgid = r.queued_id
    aa, bb, pid, seq = spoolfile.parse_id(msgid)
    assert pid == srv.pid
    path = srv.spool / aa / bb / msgid.split("-", 1)[1]
    assert path.is_file() and path == spoolfile.id_path(srv.spool, msgid)
    m = spoolfile.read_path(path)
    assert m.id == msgid
    assert m.body == body  # dot-unstuffed, CRLF kept
    assert m.sender == "s@sender.test"
    assert [x.addr for x in m.rcpts] == ["r@rcpt.test"]
    assert m.rcpts[0].notify is None and m.rcpts[0].orcpt_type is None
    assert (m.protocol, m.source_ip, m.helo, m.auth_user) == ("esmtp", "127.0.0.1",
                                                              "client.test", None)
    assert m.body_type == spoolfile.BODY_7BIT and not m.smtputf8
    assert m.ret is None and m.envid is None
    assert abs(m.ctime_us / 1e6 - time.time()) < 120
    mt = re.fullmatch(
        r"Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n"
        rf"\tby mx\.test\.example \(celer\) with ESMTP id {re.escape(msgid)}\r\n"
        rf"\tfor <r@rcpt\.test>; {RECEIVED_DATE}\r\n", m.prepend.decode())
    assert mt, m.prepend
    assert received_date_ok(mt.group("date"))


def test_received_has_no_for_clause_with_two_recipients(srv):
    body = simple_body("two")
    with srv.session() as c:
        r = c.mail_txn("s@sender.test", ["a@rcpt.test", "b@rcpt.test"], body)
        c.quit()
    m = srv.message(r.queued_id)
    assert [x.addr for x in m.rcpts] == ["a@rcpt.test", "b@rcpt.test"]
    assert b"\tfor <" not in m.prepend and m.prepend.startswith(b"Received: from client.test")


def test_null_sender_is_stored_empty(srv):
    with srv.session() as c:
        r = c.mail_txn("", ["r@rcpt.test"], simple_body("bounce"))
        c.quit()
    assert srv.message(r.queued_id).sender == ""


def test_ehlo_resets_the_transaction(srv):
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<a@sender.test>") == (250, "2.1.0")
        c.ehlo()
        assert c.cmd("RCPT TO:<r@rcpt.test>") == (503, "5.5.1")
        assert c.cmd("MAIL FROM:<b@sender.test>") == (250, "2.1.0")


def test_control_characters_in_a_command_are_refused(srv):
    with srv.session() as c:
        assert c.cmd(b"NOOP \x00x") == (500, "5.5.2")
        assert c.cmd(b"MAIL FROM:<a\x7f@sender.test>") == (500, "5.5.2")
        assert c.cmd("NOOP") == (250, "2.0.0")


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    before = set(srv.messages())
    idle = srv.session()
    mid = srv.session()
    assert mid.cmd("MAIL FROM:<s@sender.test>").code == 250
    assert mid.cmd("RCPT TO:<r@rcpt.test>").code == 250
    assert mid.cmd("DATA").code == 354
    mid.send(b"Subject: cut short\r\n\r\nhalf")
    srv.assert_clean_stop()
    # open sessions are told, the unfinished message is gone
    for c in (idle, mid):
        r = c.read_reply(timeout=5)
        assert r == (421, "4.3.2") and r.msg == "Service shutting down", r
        assert c.wait_closed(3.0)
    assert set(srv.messages()) == before
    assert f"stopped pid={srv.pid}" in srv.d.paniclog.read_text()
