"""CHUNKING and BINARYMIME (RFC 3030) with raw sockets: BDAT chunks are stored
byte for byte, refused chunks are swallowed (never read as commands)."""
import pytest

import spoolfile
from conftest import wait_for
from smtpkit import simple_body, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "chunking", listens={
        "small": ("127.0.0.1", 'Max_Message_Size = 1k\nRelay_Hosts = ( "127.0.0.1" )'),
    })
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def begin(c, mail_params=""):
    assert c.cmd(f"MAIL FROM:<s@sender.test>{mail_params}") == (250, "2.1.0")
    assert c.cmd("RCPT TO:<r@rcpt.test>") == (250, "2.1.5")


def bdat(c, data, last=False):
    c.send(f"BDAT {len(data)}{' LAST' if last else ''}\r\n".encode() + data)
    return c.read_reply()


def test_chunks_then_bdat_0_last_are_stored_exactly(srv):
    part1 = b"Subject: chunks\r\nMessage-ID: <c@client.test>\r\n"
    part2 = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n.\r\n..not stuffed\r\n"
    part3 = b"no final newline"
    with srv.session() as c:
        begin(c)
        r = bdat(c, part1)
        assert r == (250, "2.0.0") and r.msg == f"{len(part1)} octets received", r
        r = bdat(c, part2)
        assert r == (250, "2.0.0") and r.msg == f"{len(part1) + len(part2)} octets received"
        assert bdat(c, part3).code == 250
        r = bdat(c, b"", last=True)
        assert r.code == 250 and r.queued_id, r
        c.quit()
    m = srv.message(r.queued_id)
    assert m.body == part1 + part2 + part3  # no unstuffing, no terminator, nothing added
    assert m.body_type == spoolfile.BODY_7BIT


def test_whole_transaction_with_bdat_last_in_one_write(srv):
    body = simple_body("one write")
    with srv.session() as c:
        c.send(b"MAIL FROM:<s@sender.test>\r\nRCPT TO:<r@rcpt.test>\r\n"
               + f"BDAT {len(body)} LAST\r\n".encode() + body + b"QUIT\r\n")
        rs = c.read_replies(4)
        assert [r.code for r in rs] == [250, 250, 250, 221], rs
    assert srv.message(rs[2].queued_id).body == body


def test_binarymime_bytes_are_stored_exactly(srv):
    binary = bytes(range(256)) * 4 + b"\r\n.\r\n\x00\n\r\x00.\r"
    body = (b"Subject: binary\r\nMessage-ID: <b@client.test>\r\n"
            b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n" + binary)
    with srv.session() as c:
        begin(c, " BODY=BINARYMIME")
        assert bdat(c, body[:100]).code == 250
        r = bdat(c, body[100:], last=True)
        assert r.queued_id, r
        c.quit()
    m = srv.message(r.queued_id)
    assert m.body == body
    assert m.body_type == spoolfile.BODY_BINARYMIME


def test_bdat_without_mail_is_refused_and_the_chunk_swallowed(srv):
    with srv.session() as c:
        chunk = b"NOOP\r\nNOOP\r\n"  # looks like commands: must not be run
        c.send(b"BDAT %d\r\n%s" % (len(chunk), chunk))
        r = c.read_reply()
        assert r == (503, "5.5.1"), r
        assert c.cmd("RSET") == (250, "2.0.0")
        assert c.buf == b""  # exactly one reply to the chunk


def test_bdat_without_rcpt_is_554(srv):
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")
        chunk = b"RCPT TO:<r@x>\r\n"
        c.send(b"BDAT %d LAST\r\n%s" % (len(chunk), chunk))
        assert c.read_reply() == (554, "5.5.1")
        assert c.cmd("NOOP") == (250, "2.0.0")
        assert c.buf == b""


def test_bdat_after_refused_mail_is_swallowed_with_5xx(srv):
    with srv.session("small") as c:
        assert c.cmd("MAIL FROM:<s@sender.test> SIZE=5000") == (552, "5.3.4")
        chunk = b"MAIL FROM:<x@y>\r\n"
        c.send(b"RCPT TO:<r@rcpt.test>\r\nBDAT %d LAST\r\n%s" % (len(chunk), chunk))
        rs = c.read_replies(2)
        assert rs[0] == (503, "5.5.1") and rs[1] == (503, "5.5.1"), rs  # RCPT, BDAT
        assert c.cmd("NOOP") == (250, "2.0.0")
        assert c.buf == b""
        # the session is fine for a new transaction
        body = simple_body("after refusal")
        begin(c)
        assert bdat(c, body, last=True).queued_id


def test_new_transaction_after_refused_bdat_chunk_works(srv):
    body = simple_body("fresh transaction")
    with srv.session() as c:
        c.send(b"BDAT 5\r\nhello")  # no transaction: refused, swallowed
        assert c.read_reply() == (503, "5.5.1")
        begin(c)  # a new MAIL starts a new transaction (no RSET needed: there was none)
        r = bdat(c, body, last=True)
        assert r.code == 250 and r.queued_id, r


def test_data_after_bdat_is_503(srv):
    with srv.session() as c:
        begin(c)
        assert bdat(c, b"Subject: mixed\r\n").code == 250
        r = c.cmd("DATA")
        assert r == (503, "5.5.1"), r
        assert c.cmd("RCPT TO:<late@rcpt.test>") == (503, "5.5.1")
        r = bdat(c, b"\r\nbody\r\n", last=True)
        assert r.queued_id, r
        c.quit()
    m = srv.message(r.queued_id)
    assert m.body == b"Subject: mixed\r\n\r\nbody\r\n"
    assert [x.addr for x in m.rcpts] == ["r@rcpt.test"]


def test_bdat_needs_ehlo(srv):
    with srv.connect() as c:
        c.greeting()
        c.cmd("HELO old.client.test")
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        c.send(b"BDAT 6 LAST\r\nQUIT\r\n")  # 6 octets: "QUIT\r\n"
        assert c.read_reply() == (503, "5.5.1")
        assert c.cmd("NOOP") == (250, "2.0.0")  # QUIT inside the chunk was not run


def test_bdat_syntax_errors(srv):
    with srv.session() as c:
        begin(c)
        assert c.cmd("BDAT") == (501, "5.5.4")
        assert c.cmd("BDAT x") == (501, "5.5.4")
        assert c.cmd("BDAT 0 FIRST") == (501, "5.5.4")
        r = bdat(c, simple_body("after syntax errors"), last=True)
        assert r.queued_id


def test_bdat_over_max_message_size_is_552_after_last(srv):
    before = set(srv.messages())
    big = simple_body("big", text="x" * 2000 + "\r\n")
    with srv.session("small") as c:
        begin(c)
        r = bdat(c, big[:600])
        assert r.code == 250
        r = bdat(c, big[600:], last=True)
        assert r == (552, "5.3.4"), r
        assert c.cmd("NOOP") == (250, "2.0.0")
    # the refused message's file is removed (by the spool's I/O pool: maybe not at once)
    wait_for(lambda: set(srv.messages()) == before, timeout=5, what="refused message removed")


def test_client_vanishing_inside_a_chunk_leaves_no_message(srv):
    before = set(srv.messages())
    c = srv.session()
    begin(c)
    c.send(b"BDAT 100000 LAST\r\nSubject: cut\r\n\r\n" + b"z" * 70000)
    c.close()
    wait_for(lambda: set(srv.messages()) == before, timeout=5, what="partial message removed")


def test_data_after_body_binarymime_is_503(srv):
    with srv.session() as c:
        begin(c, " BODY=BINARYMIME")
        r = c.cmd("DATA")
        if r.code == 354:
            c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
            c.read_reply()
        assert r == (503, "5.5.1"), r


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
