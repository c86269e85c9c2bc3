"""SMTP smuggling: only CR LF "." CR LF ends DATA. Every other dot-line
sequence is data, so a second transaction hidden in the body stays data and
exactly one message is queued. Bare LF in headers: pedantic by default, "fix"
rewrites it to CRLF."""
import pytest

from conftest import wait_for
from smtpkit import start_server

RELAY = 'Relay_Hosts = ( "127.0.0.1" )\n'
HEADERS = (b"From: <s@sender.test>\r\nTo: <r@rcpt.test>\r\nSubject: smuggle\r\n"
           b"Message-ID: <smuggle@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n")
SMUGGLED = (b"MAIL FROM:<admin@victim.test>\r\nRCPT TO:<y@rcpt.test>\r\nDATA\r\n"
            b"From: <admin@victim.test>\r\nSubject: smuggled\r\n\r\nsmuggled\r\n")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "smuggling", listens={
        "fix": ("127.0.0.1", RELAY + 'Pathway = "fix"'),
        "bodypedantic": ("127.0.0.1", RELAY + 'Pathway = "bodypedantic"'),
    }, global_extra='Pathway "fix" { RFC2822_Lone_LF_In_Headers = fix }\n'
                    'Pathway "bodypedantic" { RFC2822_Lone_LF_In_Body = pedantic }\n')
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def all_replies(c):
    out = []
    while True:
        try:
            out.append(c.read_reply(timeout=3))
        except Exception:
            return out


@pytest.mark.parametrize("seq", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"],
                         ids=["LF.LF", "CR.CR", "LF.CRLF", "CRLF.LF", "CR.CRLF"])
def test_smuggled_transaction_stays_data(srv, seq):
    before = set(srv.messages())
    data = HEADERS + b"first part" + seq + SMUGGLED
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        # everything in one write, the real end of data, then QUIT
        c.send(data + b".\r\nQUIT\r\n")
        rs = all_replies(c)
    assert [r.code for r in rs] == [250, 221], rs  # one "queued as", no 354 for the smuggler
    msgid = rs[0].queued_id
    assert msgid
    assert set(srv.messages()) - before == {msgid}
    m = srv.message(msgid)
    assert m.body == data  # the smuggled commands are stored as data, byte for byte
    assert [x.addr for x in m.rcpts] == ["r@rcpt.test"] and m.sender == "s@sender.test"


def test_bare_lf_dot_alone_does_not_end_data(srv):
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(HEADERS + b"line\n.\n")
        with pytest.raises(TimeoutError):
            c.read_reply(timeout=0.5)  # still in DATA: no reply yet
        c.send(b"\r\n.\r\n")
        r = c.read_reply()
        assert r.queued_id, r
    assert srv.message(r.queued_id).body == HEADERS + b"line\n.\n\r\n"


def test_bare_lf_in_headers_is_refused_by_default(srv):
    before = set(srv.messages())
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: lone\nFrom: <s@sender.test>\r\n\r\nbody\r\n.\r\n")
        r = c.read_reply()
        assert r == (550, "5.6.0"), r
        rej = srv.rejects_for(c)
        assert (rej[0]["P"], rej[0]["E"]) == ("data", "550")
        assert c.cmd("NOOP") == (250, "2.0.0")
    wait_for(lambda: set(srv.messages()) == before, timeout=5, what="refused message removed")


def test_bare_cr_in_headers_is_refused_by_default(srv):
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: lone\rX: y\r\n\r\nbody\r\n.\r\n")
        assert c.read_reply() == (550, "5.6.0")


def test_bare_lf_in_headers_fixed_to_crlf(srv):
    with srv.session("fix") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: lone\nFrom: <s@sender.test>\nMessage-ID: <f@client.test>\r\n"
               b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n.\r\n")
        r = c.read_reply()
        assert r.queued_id, r
    assert srv.message(r.queued_id).body == (
        b"Subject: lone\r\nFrom: <s@sender.test>\r\nMessage-ID: <f@client.test>\r\n"
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n")


def test_bare_lf_in_body_is_kept_by_default_and_refused_when_pedantic(srv):
    data = HEADERS + b"one\ntwo\r\n"
    with srv.session() as c:
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], data)
        assert r.queued_id, r
    assert srv.message(r.queued_id).body == data
    with srv.session("bodypedantic") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(data + b".\r\n")
        assert c.read_reply() == (550, "5.6.0")


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
