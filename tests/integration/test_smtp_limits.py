"""Limits and hostile input: sizes, recipient and message counts, sessions per
listener, idle time, inbound throttle, memory high-water mark, over-long
command lines and the greeting pause. One celerd, one Listen per limit."""
import signal
import socket
import time

import pytest

from conftest import wait_for
from smtpkit import simple_body, start_server

RELAY = 'Relay_Hosts = ( "127.0.0.1" )\n'


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "limits", listens={
        "size": ("127.0.0.1", RELAY + "Max_Message_Size = 2k"),
        "rcpts": ("127.0.0.1", RELAY + "Max_Recipients_Per_Message = 3"),
        "receptions": ("127.0.0.1", RELAY + "Max_Receptions_Per_Connection = 2"),
        "rcptconn": ("127.0.0.1", RELAY + "Max_Recipients_Per_Connection = 3"),
        "sessions": ("127.0.0.1", RELAY + "Listener_Sessions = 2"),
        "idle": ("127.0.0.1", RELAY + "Idle_Time = 1"),
        "throttle": ("127.0.0.1", RELAY + 'Pathway = "throttled"'),
        "pause": ("127.0.0.1", RELAY + "Greeting_Pause = 1"),
    }, global_extra='Pathway "throttled" { Inbound_Throttle_Messages = "2/60" }\n')
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def body_of(size, subject="sized"):
    head = simple_body(subject, text="")
    line = b"y" * 70 + b"\r\n"
    n = max(0, size - len(head))
    return head + (line * (n // len(line) + 1))[:n - 2] + b"\r\n" if n >= 2 else head


# ---- size ----


def test_size_parameter_over_the_limit_is_552_at_mail(srv):
    with srv.session("size") as c:
        assert "SIZE 2048" in c.ehlo().lines
        r = c.cmd("MAIL FROM:<s@sender.test> SIZE=2049")
        assert r == (552, "5.3.4"), r
        assert c.cmd("MAIL FROM:<s@sender.test> SIZE=2048") == (250, "2.1.0")
        rej = srv.rejects_for(c)
        assert (rej[0]["P"], rej[0]["E"]) == ("mailfrom", "552")


def test_message_over_the_limit_is_552_after_the_dot(srv):
    big = body_of(3000, "too big")
    small = body_of(1500, "small enough")
    before = set(srv.messages())
    with srv.session("size") as c:
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], big)
        assert r == (552, "5.3.4"), r
        rej = srv.rejects_for(c)
        assert (rej[0]["P"], rej[0]["E"]) == ("data", "552")
        # the session is still usable, with a fresh transaction
        assert c.cmd("RCPT TO:<r@rcpt.test>") == (503, "5.5.1")
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], small)
        assert r.queued_id, r
        c.quit()
    # nothing left of the big one (removed by the spool's I/O pool: maybe not at once)
    wait_for(lambda: set(srv.messages()) - before == {r.queued_id}, timeout=5,
             what="refused message removed")
    assert srv.message(r.queued_id).body == small


def test_exactly_max_size_is_accepted(srv):
    body = body_of(2048, "exact")
    assert len(body) == 2048
    with srv.session("size") as c:
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], body, mail_params=" SIZE=2048")
        assert r.queued_id, r


# ---- recipients and messages ----


def test_max_recipients_per_message(srv):
    with srv.session("rcpts") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        for i in range(3):
            assert c.cmd(f"RCPT TO:<r{i}@rcpt.test>") == (250, "2.1.5")
        r = c.cmd("RCPT TO:<r3@rcpt.test>")
        assert r == (452, "4.5.3"), r
        assert c.cmd("DATA").code == 354
        c.send(simple_body("three") + b".\r\n")
        r = c.read_reply()
        # a new message may have three again
        r2 = c.mail_txn("s@sender.test", ["a@rcpt.test", "b@rcpt.test", "c@rcpt.test"],
                        simple_body("three again"))
        assert r2.queued_id
    assert [x.addr for x in srv.message(r.queued_id).rcpts] == [f"r{i}@rcpt.test" for i in range(3)]


def test_max_receptions_per_connection(srv):
    with srv.session("receptions") as c:
        for i in range(2):
            assert c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body(f"n{i}")).queued_id
        r = c.cmd("MAIL FROM:<s@sender.test>")
        assert r == (421, "4.7.0"), r
        assert c.wait_closed(3.0)


def test_refused_messages_do_not_count_as_receptions(srv):
    with srv.session("receptions") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RSET").code == 250
        for i in range(2):
            assert c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body(f"m{i}")).queued_id


def test_max_recipients_per_connection(srv):
    with srv.session("rcptconn") as c:
        assert c.mail_txn("s@sender.test", ["a@rcpt.test", "b@rcpt.test"],
                          simple_body("two")).queued_id
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<c@rcpt.test>") == (250, "2.1.5")
        r = c.cmd("RCPT TO:<d@rcpt.test>")
        assert r == (421, "4.5.3"), r
        assert c.wait_closed(3.0)


# ---- sessions, idle time ----


def test_listener_sessions(srv):
    a, b = srv.connect("sessions"), srv.connect("sessions")
    assert a.greeting().code == 220 and b.greeting().code == 220
    with srv.connect("sessions") as c:
        r = c.greeting()
        assert r.code == 421 and r.msg == "Too many sessions on this listener; try again later", r
        assert c.wait_closed(3.0)
    # other listen addresses are not affected
    with srv.connect("main") as m:
        assert m.greeting().code == 220
    a.quit()
    b.ehlo()  # the remaining session works
    wait_for(lambda: fresh_greeting(srv, "sessions"), timeout=5,
             what="a free session slot after QUIT")
    b.quit()


def fresh_greeting(srv, name):
    with srv.connect(name) as c:
        return c.greeting().code == 220


def test_listener_sessions_refusal_has_the_documented_enhanced_code(srv):
    a, b = srv.connect("sessions"), srv.connect("sessions")
    try:
        assert a.greeting().code == 220 and b.greeting().code == 220
        with srv.connect("sessions") as c:
            r = c.greeting()
            assert r == (421, "4.7.0"), r
    finally:
        a.quit()
        b.quit()
        wait_for(lambda: fresh_greeting(srv, "sessions"), timeout=5, what="free session slots")


def test_idle_time_closes_with_421(srv):
    with srv.session("idle") as c:
        t0 = time.monotonic()
        r = c.read_reply(timeout=5)
        elapsed = time.monotonic() - t0
        assert r == (421, "4.4.2"), r
        assert 0.8 <= elapsed <= 3.0, elapsed
        assert c.wait_closed(3.0)


def test_idle_time_is_per_command(srv):
    with srv.session("idle") as c:
        for _ in range(3):  # 1.5 s of activity, never 1 s of silence
            time.sleep(0.5)
            assert c.cmd("NOOP") == (250, "2.0.0")


def test_idle_time_during_data_drops_the_message(srv):
    before = set(srv.messages())
    with srv.session("idle") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: half\r\n\r\nhalf a mess")
        r = c.read_reply(timeout=5)
        assert r == (421, "4.4.2"), r
        assert c.wait_closed(3.0)
    # the unfinished message is removed (by the spool's I/O pool, so maybe not at once)
    wait_for(lambda: set(srv.messages()) == before, timeout=5, what="partial message removed")


def test_client_vanishing_during_data_leaves_no_message(srv):
    before = set(srv.messages())
    c = srv.session()
    assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
    assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: gone\r\n\r\n" + b"line of text\r\n" * 10000)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    wait_for(lambda: set(srv.messages()) == before, timeout=5, what="partial message removed")


# ---- throttle ----


def test_inbound_throttle(srv):
    with srv.session("throttle") as c:
        for _ in range(2):
            assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")
            assert c.cmd("RSET").code == 250
        r = c.cmd("MAIL FROM:<s@sender.test>")
        assert r == (451, "4.7.1"), r
        rej = srv.rejects_for(c)
        assert (rej[0]["P"], rej[0]["E"]) == ("mailfrom", "451")
    # the bucket belongs to the pathway, not to the session
    with srv.session("throttle") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>") == (451, "4.7.1")
    # other listen addresses are not throttled
    with srv.session("main") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")


# ---- memory high-water mark (global: switched on and off by reloads) ----


def test_memory_hwm(srv):
    held = srv.session("main")
    conf = srv.d.conf.read_text()
    srv.d.conf.write_text("Memory_HWM_RSS = 1k\n" + conf)
    srv.d.send_signal(signal.SIGHUP)
    try:
        # the check runs once a second
        wait_for(lambda: any("memory_hwm_reached limit=1024" in l for l in srv.paniclog()),
                 timeout=10, what="memory_hwm_reached")
        with srv.connect() as c:
            r = c.greeting()
            assert r.code == 421 and r.msg == "System resources exhausted; try again later", r
            assert c.wait_closed(3.0)
        r = held.cmd("MAIL FROM:<s@sender.test>")
        assert r == (451, "4.3.1"), r
    finally:
        srv.d.conf.write_text(conf)
        srv.d.send_signal(signal.SIGHUP)
        wait_for(lambda: any("memory_hwm_cleared" in l for l in srv.paniclog()), timeout=10,
                 what="memory_hwm_cleared")
    assert held.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")
    held.quit()


# ---- over-long command lines ----


def test_command_line_too_long_is_500_and_session_goes_on(srv):
    with srv.session() as c:
        r = c.cmd("NOOP " + "x" * 3000)
        assert r == (500, "5.5.2"), r
        assert c.cmd("NOOP") == (250, "2.0.0")
        r = c.cmd("MAIL FROM:<" + "a" * 2100 + "@sender.test>")
        assert r == (500, "5.5.2"), r
        assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")


def test_line_longer_than_the_buffer_is_one_500_and_its_tail_is_not_run(srv):
    with srv.session() as c:
        c.send(b"MAIL FROM:<" + b"a" * 5000)
        time.sleep(0.2)
        c.send(b"a" * 5000)
        time.sleep(0.2)
        c.send(b"\r\nRCPT TO:<r@rcpt.test>\r\nNOOP\r\n")  # the tail of the long line ends here
        rs = c.read_replies(3)
        assert [(r.code, r.enh) for r in rs] == [(500, "5.5.2"), (503, "5.5.1"), (250, "2.0.0")], rs
        assert c.cmd("QUIT").code == 221


def test_line_of_exactly_2048_octets_is_accepted(srv):
    with srv.session() as c:
        line = "NOOP " + "x" * (2048 - 5)
        assert c.cmd(line) == (250, "2.0.0")
        assert c.cmd(line + "x") == (500, "5.5.2")


# ---- greeting pause ----


def test_greeting_pause_drops_early_talkers(srv):
    with srv.connect("pause", source="127.0.0.2") as c:
        c.send(b"EHLO impatient.test\r\n")
        r = c.read_reply(timeout=5)
        assert r == (554, "5.5.0"), r
        assert c.wait_closed(3.0)
        rej = srv.rejects_for(c)
        assert (rej[0]["P"], rej[0]["E"]) == ("connect", "554")


def test_greeting_pause_for_a_patient_client(srv):
    t0 = time.monotonic()
    with srv.connect("pause", source="127.0.0.2") as c:
        r = c.greeting(timeout=5)
        elapsed = time.monotonic() - t0
        assert r.code == 220, r
        assert 0.9 <= elapsed < 3.0, elapsed
        assert c.cmd("EHLO patient.test").code == 250


def test_no_greeting_pause_for_relay_hosts(srv):
    t0 = time.monotonic()
    with srv.connect("pause", source="127.0.0.1") as c:
        r = c.greeting(timeout=5)
        assert r.code == 220 and time.monotonic() - t0 < 0.5
        c.send(b"EHLO quick.test\r\n")
        assert c.read_reply().code == 250


def test_client_that_leaves_during_the_pause(srv):
    s = socket.create_connection(srv.addr["pause"], source_address=("127.0.0.2", 0))
    s.close()
    time.sleep(1.2)  # the pause timer fires on a session that is gone


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
