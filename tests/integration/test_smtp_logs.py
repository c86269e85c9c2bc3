"""mainlog and rejectlog as Momentum writes them: one R record per accepted
recipient, one rejectlog line per refusal, M1 heartbeats."""
import base64
import re
import time

import pytest

from conftest import wait_for
from smtpkit import REJECT_LINE, simple_body, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("logs_auth")
    (d / "passwd").write_text("alice:s3cr3t-pw\n")
    s = start_server(tmp_path_factory, "logs", listens={
        "inbound": ("127.0.0.1", 'Pathway = "inbound"\nSMTP_Extensions = ( "AUTH PLAIN" )\n'
                                 'Auth_Allow_Plaintext = true\nAuth_Failure_Delay = 0\n'
                                 f'AuthPlainParameters = [ uri = "file://{d}/passwd" ]'),
    }, global_extra='Pathway_Group "mx" {\n'
                    '  Pathway "inbound" { Relay_Domains = ( "rcpt.test" ) }\n}\n',
        logger_extra="heartbeat = 1\n")
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def test_one_reception_record_per_recipient(srv):
    rcpts = ["a@rcpt.test", "b.c@Sub.Rcpt.test", "d@rcpt.test"]
    body = simple_body("logged")
    t0 = int(time.time())
    with srv.session(helo="log.client.test") as c:
        assert c.cmd("FROB") == (500, "5.5.1")  # for the session's connid in the rejectlog
        r = c.mail_txn("sender.name@sender.test", rcpts, body)
        c.quit()
    msgid = r.queued_id
    recs = srv.receptions(msgid, 3)
    assert len(recs) == 3
    connid = srv.rejects_for(c)[0]["C"]
    m = srv.message(msgid)
    size = len(m.prepend) + len(m.body)
    for rec, rcpt in zip(recs, [x.addr for x in m.rcpts]):
        assert len(rec) == 14, rec
        ts, mid, batch, conn, typ, rlp, rdom, flp, fdom, ip, sz, proto, bg, b = rec
        assert t0 - 1 <= int(ts) <= time.time() + 1
        assert (mid, batch, conn, typ) == (msgid, msgid, connid, "R")
        assert f"{rlp}@{rdom}" == rcpt
        assert (flp, fdom, ip) == ("sender.name", "sender.test", "127.0.0.1")
        assert int(sz) == size
        assert (proto, bg, b) == ("esmtp", "default", "default")
    assert [f"{r[5]}@{r[6]}" for r in recs] == ["a@rcpt.test", "b.c@sub.rcpt.test", "d@rcpt.test"]


def test_null_sender_has_empty_from_fields(srv):
    with srv.session() as c:
        r = c.mail_txn("", ["bounce@rcpt.test"], simple_body("null sender"))
    rec = srv.receptions(r.queued_id)[0]
    assert rec[5:9] == ["bounce", "rcpt.test", "", ""], rec


def test_refused_message_has_no_reception_record(srv):
    with srv.session() as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"no header section\r\n.\r\n")
        assert c.read_reply() == (550, "5.6.0")
        rej = srv.rejects_for(c)
    assert not any(f"@{rej[0]['C']}@R@" in l for l in srv.mainlog())


def test_helo_session_is_recorded_as_smtp(srv):
    with srv.connect() as c:
        c.greeting()
        assert c.cmd("HELO old.client.test").code == 250
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body("helo proto"))
    m = srv.message(r.queued_id)
    assert b" with SMTP id " in m.prepend
    assert m.protocol == "smtp"
    assert srv.receptions(r.queued_id)[0][11] == "smtp"


def test_one_rejectlog_line_per_refusal(srv):
    host, port = srv.addr["inbound"]
    with srv.session("inbound", helo="rej.client.test") as c:
        replies = [c.cmd("RCPT TO:<r@rcpt.test>"),
                   c.cmd("MAIL FROM:<bad"),
                   c.cmd("MAIL FROM:<s@sender.test>"),
                   c.cmd("RCPT TO:<x@outside.test>"),
                   c.cmd("DATA"),
                   c.cmd("VRFY x")]
        assert [(r.code, r.enh) for r in replies] == [
            (503, "5.5.1"), (501, "5.5.2"), (250, "2.1.0"), (550, "5.7.1"), (554, "5.5.1"),
            (252, "2.5.0")]
        rej = srv.rejects_for(c, 4)
    assert len(rej) == 4, rej  # 2xx replies are not refusals
    assert [(x["P"], x["E"]) for x in rej] == [("rcptto", "503"), ("mailfrom", "501"),
                                              ("rcptto", "550"), ("data", "554")]
    assert [x["reason"] for x in rej] == [
        "503 5.5.1 Need MAIL command", "501 5.5.2 Bad sender address syntax",
        "550 5.7.1 Relaying denied", "554 5.5.1 No valid recipients"]
    assert len({x["C"] for x in rej}) == 1
    for x in rej:
        assert x["L"] == f"{host}:{port}" and x["R"] == c.remote_str
        assert (x["PATH"], x["PATH_GRP"], x["M"]) == ("inbound", "mx", "esmtp")
        assert x["CTXCONN"] == "ehlo_domain=rej.client.test" and x["CTXMESS"] == ""
    # every line of the file parses
    assert all(REJECT_LINE.match(l) or re.fullmatch(r"\d+: Marker 1", l)
               for l in srv.rejectlog()), srv.rejectlog()


def test_auth_secrets_are_never_logged(srv):
    with srv.session("inbound") as c:
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong-pw-x").decode()) == (
            535, "5.7.8")
        assert c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0s3cr3t-pw").decode()) == (
            235, "2.7.0")
        assert c.cmd("FROB") == (500, "5.5.1")
        rej = srv.rejects_for(c, 2)
    assert rej[0]["reason"] == "535 5.7.8 Authentication credentials invalid"
    assert "auth_user=alice" in rej[1]["CTXCONN"]
    logs = "\n".join(srv.rejectlog() + srv.mainlog() + srv.paniclog())
    for secret in ("wrong-pw-x", "s3cr3t-pw", base64.b64encode(b"\0alice\0s3cr3t-pw").decode()):
        assert secret not in logs


@pytest.mark.parametrize("helo", ["x,auth_user=admin", "x] CTXMESS=[forged] 250 all is well"])
def test_ehlo_name_cannot_forge_rejectlog_fields(srv, helo):
    with srv.session(helo=helo) as c:
        assert c.cmd("FROB") == (500, "5.5.1")
        rej = srv.rejects_for(c)[0]
    pairs = dict(kv.split("=", 1) for kv in rej["CTXCONN"].split(","))
    assert "auth_user" not in pairs, rej
    assert rej["CTXMESS"] == "" and rej["reason"] == "500 5.5.1 Command unrecognized", rej


def test_rejectlog_phase_of_parser_refusals(srv):
    with srv.connect() as c:
        c.greeting()
        assert c.cmd("EHLO") == (501, "5.5.4")
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA now") == (501, "5.5.4")
        rej = srv.rejects_for(c, 2)
    assert [x["P"] for x in rej] == ["ehlo", "data"], rej


def test_heartbeat_records(srv):
    def beats():
        m = [l for l in srv.mainlog() if l.endswith("@@@@M1")]
        r = [l for l in srv.rejectlog() if l.endswith(": Marker 1")]
        return (m, r) if len(m) >= 2 and len(r) >= 2 else None
    m, r = wait_for(beats, timeout=5, what="two heartbeats in each log")
    for line in m:
        assert re.fullmatch(r"(\d+)@@@@M1", line), line
    ts = [int(l.split("@")[0]) for l in m]
    assert ts == sorted(ts) and abs(ts[-1] - time.time()) < 5
    assert all(re.fullmatch(r"\d+: Marker 1", l) for l in r)


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
