"""PIPELINING (RFC 2920): whole transactions in one write, replies in order and,
for one batch of commands, in one write from celerd; messages back to back."""
import re
import subprocess

import pytest

from smtpkit import dot_stuff, simple_body, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "pipelining", listens={
        # no relay by address: only rcpt.test is accepted, so one RCPT can fail
        "inbound": ("127.0.0.1", 'Pathway = "inbound"'),
    }, global_extra='Pathway "inbound" { Relay_Domains = ( "rcpt.test" ) }\n')
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def parse_all(c, n):
    out = c.read_replies(n)
    assert c.buf == b"", f"unexpected extra bytes {c.buf!r}"
    return out


def test_transaction_in_one_write_replies_in_order_in_one_read(srv):
    body = simple_body("pipelined")
    with srv.session("inbound") as c:
        c.send("MAIL FROM:<s@sender.test>\r\n"
               "RCPT TO:<a@rcpt.test>\r\n"
               "RCPT TO:<b@elsewhere.test>\r\n"
               "RCPT TO:<bad address>\r\n"
               "RCPT TO:<c@rcpt.test>\r\n"
               "DATA\r\n")
        # the whole batch was one segment: all six replies leave celerd in one write,
        # so the first recv() already holds all of them
        first = c.recv_once()
        assert first.count(b"\r\n") == 6, first
        rs = parse_all(c, 6)
        assert [(r.code, r.enh) for r in rs] == [
            (250, "2.1.0"), (250, "2.1.5"), (550, "5.7.1"), (501, "5.5.2"), (250, "2.1.5"),
            (354, None)], rs
        assert rs[2].msg == "Relaying denied"
        c.send(dot_stuff(body) + b".\r\nQUIT\r\n")
        done, bye = c.read_replies(2)
        assert done.queued_id and bye == (221, "2.0.0")
        assert c.wait_closed()
    m = srv.message(done.queued_id)
    assert [x.addr for x in m.rcpts] == ["a@rcpt.test", "c@rcpt.test"]
    assert m.body == body


def test_two_messages_back_to_back_in_one_write(srv):
    b1 = simple_body("first", text=".dot line\r\nMAIL FROM:<not@a.command>\r\n")
    b2 = simple_body("second")
    with srv.session() as c:
        c.send("MAIL FROM:<one@sender.test>\r\nRCPT TO:<r1@rcpt.test>\r\nDATA\r\n"
               .encode() + dot_stuff(b1) + b".\r\n"
               b"MAIL FROM:<two@sender.test>\r\nRCPT TO:<r2@rcpt.test>\r\n"
               b"RCPT TO:<r3@rcpt.test>\r\nDATA\r\n" + dot_stuff(b2) + b".\r\nQUIT\r\n")
        rs = c.read_replies(9)
        assert [r.code for r in rs] == [250, 250, 354, 250, 250, 250, 250, 354, 250], rs
        bye = c.read_reply()
        assert bye.code == 221
    id1, id2 = rs[3].queued_id, rs[8].queued_id
    assert id1 and id2 and id1 != id2
    m1, m2 = srv.message(id1), srv.message(id2)
    assert (m1.sender, [x.addr for x in m1.rcpts], m1.body) == ("one@sender.test",
                                                                ["r1@rcpt.test"], b1)
    assert (m2.sender, [x.addr for x in m2.rcpts], m2.body) == (
        "two@sender.test", ["r2@rcpt.test", "r3@rcpt.test"], b2)


def test_failed_mail_in_a_batch_fails_the_rest_in_order(srv):
    with srv.session() as c:
        c.send("MAIL FROM:<no closing bracket\r\nRCPT TO:<r@rcpt.test>\r\nDATA\r\n"
               "RSET\r\nNOOP\r\n")
        rs = c.read_replies(5)
        assert [(r.code, r.enh) for r in rs] == [(501, "5.5.2"), (503, "5.5.1"), (503, "5.5.1"),
                                                 (250, "2.0.0"), (250, "2.0.0")], rs
        rej = srv.rejects_for(c, 3)
        assert [x["E"] for x in rej] == ["501", "503", "503"]


def test_many_recipients_in_one_write(srv):
    rcpts = [f"u{i}@rcpt.test" for i in range(60)]
    body = simple_body("sixty")
    with srv.session() as c:
        c.send("MAIL FROM:<s@sender.test>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts)
               + "DATA\r\n")
        rs = c.read_replies(62)
        assert rs[0].code == 250 and all(r == (250, "2.1.5") for r in rs[1:61]), rs
        assert rs[61].code == 354
        c.send(dot_stuff(body) + b".\r\n")
        r = c.read_reply()
        assert r.queued_id
    assert [x.addr for x in srv.message(r.queued_id).rcpts] == rcpts


def test_swaks_pipelining_client(srv):
    host, port = srv.addr["main"]
    res = subprocess.run(["swaks", "--server", f"{host}:{port}", "--pipeline",
                          "--from", "s@sender.test", "--to", "a@rcpt.test,b@rcpt.test",
                          "--helo", "swaks.client.test", "--header", "Subject: via swaks"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    m = re.search(r"<-  250 2\.0\.0 Ok: queued as (\S+)", res.stdout)
    assert m, res.stdout
    msg = srv.message(m.group(1))
    assert [x.addr for x in msg.rcpts] == ["a@rcpt.test", "b@rcpt.test"]
    assert msg.helo == "swaks.client.test" and b"Subject: via swaks\r\n" in msg.body


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
