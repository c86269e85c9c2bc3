"""Messages with several recipients: batches of Max_Recipients_Per_Batch, one
transaction per domain, and per-recipient outcomes (D, P and T for the same
message), with the bounce for the failed recipient at the sender's MX. The MX offers
PIPELINING (celerd sends MAIL, RCPTs and DATA in one write) or not (lock-step)."""
import time

import pytest

import nsd
import spoolfile
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import finish, message
from conftest import wait_for

SENDER = "s@sender.example.test"


PIPELINING = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "lockstep"])


@PIPELINING
def test_seven_recipients_in_batches_of_three(rig_factory, mx_farm, pipelining):
    mx1 = mx_farm.add("mx1", nsd.MX1, pipelining=pipelining)
    rig = rig_factory(options={"Max_Recipients_Per_Batch": "3"})
    rcpts = [f"u{i}@batch.example.test" for i in range(7)]
    body = message("seven", to=rcpts[0])
    msgid = rig.send(SENDER, rcpts, body)
    got = mx1.wait_messages(3)
    time.sleep(0.5)
    got = mx1.received()
    assert len(got) == 3, got
    assert sorted(len(m.rcpt_tos) for m in got) == [1, 3, 3]
    assert sorted(r for m in got for r in m.rcpt_tos) == sorted(rcpts)
    assert len({m.data for m in got}) == 1 and got[0].data.endswith(body)
    assert all(m.mail_from == SENDER for m in got)
    d = rig.wait_records(msgid, "D", n=7)
    assert len(d) == 7 and {r.domain for r in d} == {"batch.example.test"}
    assert len(mx1.rcpt_attempts()) == 7  # no recipient offered twice
    rig.wait_spool_empty()
    finish(rig, mx1)


def test_each_domain_goes_to_its_own_mx(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mxb = mx_farm.add("mx-b", nsd.MX_B)
    rig = rig_factory()
    rcpts = ["a1@a.example.test", "b1@b.example.test", "a2@a.example.test", "b2@b.example.test"]
    body = message("two domains", to=rcpts[0])
    msgid = rig.send(SENDER, rcpts, body)
    (ma,) = mx1.wait_messages(1)
    (mb,) = mxb.wait_messages(1)
    assert ma.rcpt_tos == ["a1@a.example.test", "a2@a.example.test"]
    assert mb.rcpt_tos == ["b1@b.example.test", "b2@b.example.test"]
    assert ma.data == mb.data and ma.data.endswith(body)
    d = rig.wait_records(msgid, "D", n=4)
    assert sorted((r.domain, r.remote_ip) for r in d) == [
        ("a.example.test", nsd.MX1), ("a.example.test", nsd.MX1),
        ("b.example.test", nsd.MX_B), ("b.example.test", nsd.MX_B)]
    rig.wait_spool_empty()
    time.sleep(0.3)
    assert len(mx1.received()) == 1 and len(mxb.received()) == 1
    finish(rig, mx1)


@PIPELINING
def test_mixed_outcomes_in_one_transaction(rig_factory, mx_farm, pipelining):
    mx1 = mx_farm.add("mx1", nsd.MX1, pipelining=pipelining)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    ok, bad, later = "ok@batch.example.test", "bad@batch.example.test", "later@batch.example.test"
    replies = {bad: "550 5.1.1 no such user here", later: "451 4.2.1 mailbox busy, later"}
    mx1.rcpt_reply = replies
    rig = rig_factory()
    body = message("mixed", to=ok)
    msgid = rig.send(SENDER, [ok, bad, later], body)

    (m,) = mx1.wait_messages(1)
    assert m.rcpt_tos == [ok] and m.data.endswith(body)
    (d,) = rig.wait_records(msgid, "D")
    (p,) = rig.wait_records(msgid, "P")
    (t,) = rig.wait_records(msgid, "T")
    assert d.retries == 0 and d.remote_ip == nsd.MX1
    assert p.response == "550 5.1.1 no such user here" and p.stage == 4, p
    assert t.response == "451 4.2.1 mailbox busy, later" and t.stage == 4, t
    assert d.connid == p.connid == t.connid  # one session decided all three

    # the spool keeps the message for the deferred recipient only
    def progress():
        try:
            sm = rig.spool_message(msgid)
        except (FileNotFoundError, spoolfile.SpoolError):
            return None
        return sm if sm.attempts == 1 else None
    sm = wait_for(progress, timeout=5, what="PROGRESS record with attempts=1")
    states = {r.addr: r.state for r in sm.rcpts}
    assert states == {ok: spoolfile.STATE_DELIVERED, bad: spoolfile.STATE_FAILED,
                      later: spoolfile.STATE_PENDING}

    # the bounce names the failed recipient and the server's reply, and only it
    def bounce():
        got = [b for b in snd.received() if b.mail_from == ""]
        return got or None
    (b,) = wait_for(bounce, timeout=15, what="the bounce at the sender's MX")
    assert b.rcpt_tos == [SENDER]
    report = b.data.split(b"----- The headers of your message -----")[0]
    assert b"<bad@batch.example.test>: 550 5.1.1 no such user here" in report
    assert ok.encode() not in report and later.encode() not in report
    assert b"Subject: mixed" in b.data  # the original headers are quoted

    # the retry offers the deferred recipient alone
    mx1.wait_rcpt_attempts(2, later, timeout=10)
    mx1.rcpt_reply = None
    wait_for(lambda: mx1.received_by(later), timeout=10, what="the deferred recipient delivered")
    second = mx1.received_by(later)[0]
    assert second.rcpt_tos == [later] and second.data == m.data
    (d2,) = [r for r in rig.wait_records(msgid, "D", n=2) if r.retries > 0]
    assert d2.retries >= 1
    rig.wait_spool_empty()
    time.sleep(1)
    assert [len(mx1.rcpt_attempts(a)) for a in (ok, bad)] == [1, 1]
    assert len(mx1.received_by(ok)) == 1 and len(mx1.received_by(later)) == 1
    assert len([x for x in snd.received() if x.mail_from == ""]) == 1
    finish(rig, mx1)
