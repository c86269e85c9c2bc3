"""Transient failures and Momentum's retry schedule (docs/delivery.md, Outcomes and retries).

The n-th retry waits Retry_Interval x 2^(n-1) seconds, at most Max_Retry_Interval;
Max_Retries, Message_Expiration and Never_Retry turn transient failures permanent.
Times are measured at the MX (when each RCPT arrives) and in the mainlog (whole
seconds), with a tolerance of one second: celerd schedules retries in whole seconds.
"""
import time

import nsd
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import finish, message
from mx import DROP
from conftest import wait_for

SENDER = "s@sender.example.test"
DEFER = "451 4.7.1 greylisted, try later"


def defer_domains(*domains):
    return lambda addr: DEFER if addr.split("@")[-1] in domains else None


def test_retry_schedule_then_delivered_once(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rcpt = "u@retry.example.test"
    seen = []

    def greylist(addr):
        """Defers the first four attempts, accepts the fifth."""
        if addr != rcpt:
            return None
        seen.append(addr)
        return DEFER if len(seen) <= 4 else None
    mx1.rcpt_reply = greylist
    rig = rig_factory(options={"Retry_Interval": "1", "Max_Retry_Interval": "4"})
    body = message("retry me", to=rcpt)
    msgid = rig.send(SENDER, [rcpt], body)
    # attempts 1..5: the first at once, then retries after 1, 2, 4 and 4 (8, capped) seconds
    (m,) = mx1.wait_messages(1, timeout=25)
    attempts = mx1.rcpt_attempts(rcpt)
    assert [a.reply for a in attempts] == [DEFER] * 4 + ["250 2.1.5 OK"]
    t = [a.time for a in attempts]
    gaps = [b - a for a, b in zip(t, t[1:])]
    expected = [1, 2, 4, 4]
    for g, e in zip(gaps, expected):
        assert e - 1.0 <= g <= e + 0.6, f"gaps {gaps} (expected about {expected})"
    assert gaps[2] > gaps[0] + 1.5, f"no exponential backoff: {gaps}"

    recs = rig.wait_records(msgid, "T", n=4)
    assert [r.retries for r in recs] == [0, 1, 2, 3]
    for r in recs:
        assert r.response == DEFER and r.domain == "retry.example.test"
        assert r.stage == 4 and r.remote_ip == nsd.MX1  # RCPT stage
    (d,) = rig.wait_records(msgid, "D")
    assert d.retries == 4 and d.remote_ip == nsd.MX1
    ts = [r.ts for r in recs] + [d.ts]
    for g, e in zip([b - a for a, b in zip(ts, ts[1:])], expected):
        assert e - 1 <= g <= e + 1, f"mainlog T/D times {ts}"
    assert [r.secs for r in recs + [d]] == sorted(r.secs for r in recs + [d])
    assert m.rcpt_tos == [rcpt] and m.data.endswith(body)
    rig.wait_spool_empty()
    time.sleep(1.5)
    assert len(mx1.received_by(rcpt)) == 1 and len(rig.records(msgid, "D")) == 1
    assert rig.records(msgid, "P") == []
    finish(rig, mx1)


def test_deferred_message_progress_is_in_the_spool(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rcpt = "u@retry.example.test"
    mx1.rcpt_reply = {rcpt: DEFER}
    rig = rig_factory()
    msgid = rig.send(SENDER, [rcpt], message("progress", to=rcpt))
    recs = rig.wait_records(msgid, "T", n=2)

    def recorded():
        sm = rig.spool_message(msgid)
        return sm if sm.attempts and sm.attempts >= 2 else None
    sm = wait_for(recorded, timeout=5, what="PROGRESS with two attempts")
    assert sm.next_attempt >= recs[1].ts + 1, (sm.next_attempt, recs[1].ts)
    assert sm.response.startswith("451") and "greylisted" in sm.response
    assert rig.records(msgid, "DP") == []
    mx1.rcpt_reply = None
    rig.wait_records(msgid, "D", timeout=10)
    rig.wait_spool_empty()
    finish(rig, mx1)


def test_max_retries_expiration_and_never_retry(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    mx1.rcpt_reply = defer_domains("maxretries.example.test", "expire.example.test",
                                   "neverretry.example.test")
    rig = rig_factory(extra="""\
        Domain "maxretries.example.test" { Max_Retries = 2 }
        Domain "expire.example.test" { Message_Expiration = 3 }
        Domain "neverretry.example.test" { Never_Retry = true }
        """)
    r_max, r_exp, r_never = ("u@maxretries.example.test", "u@expire.example.test",
                             "u@neverretry.example.test")
    t0 = time.time()
    id_max = rig.send(SENDER, [r_max], message("max retries", to=r_max))
    id_exp = rig.send(SENDER, [r_exp], message("expiration", to=r_exp))
    id_never = rig.send(SENDER, [r_never], message("never retry", to=r_never))

    # Never_Retry: the first transient failure is final
    (p,) = rig.wait_records(id_never, "P", timeout=10)
    assert p.response.startswith("554 5.4.7 [internal] exceeded max retries"), p
    assert len(mx1.rcpt_attempts(r_never)) == 1

    # Max_Retries = 2: the first attempt and two retries, then P
    (p,) = rig.wait_records(id_max, "P", timeout=15)
    assert p.response == "554 5.4.7 [internal] exceeded max retries without delivery", p
    assert len(mx1.rcpt_attempts(r_max)) == 3
    # the attempts that leave the message queued are T records; the last one is only the P
    assert [r.retries for r in rig.records(id_max, "T")] == [0, 1]
    assert p.retries == 2

    # Message_Expiration = 3 s: P once the message is 3 s old
    (p,) = rig.wait_records(id_exp, "P", timeout=15)
    assert p.response == "554 5.4.7 [internal] exceeded max time without delivery", p
    assert p.secs >= 3.0 and time.time() - t0 >= 3.0
    assert len(mx1.rcpt_attempts(r_exp)) >= 2

    # each sender gets a bounce naming the recipient and the reason; nothing stays queued
    def bounces():
        got = [m for m in snd.received() if m.mail_from == ""]
        return got if len(got) >= 3 else None
    got = wait_for(bounces, timeout=15, what="3 bounces")
    for rcpt, why in ((r_max, b"exceeded max retries"), (r_exp, b"exceeded max time"),
                      (r_never, b"exceeded max retries")):
        (b,) = [m for m in got if f"<{rcpt}>".encode() in m.data]
        assert b.rcpt_tos == [SENDER] and why in b.data and b"554 5.4.7" in b.data
    rig.wait_spool_empty()
    time.sleep(1.5)
    assert len(mx1.rcpt_attempts(r_max)) == 3 and len(mx1.rcpt_attempts(r_never)) == 1
    assert mx1.received() == []
    finish(rig, mx1)


def test_retry_records_keep_message_size_and_binding(rig_factory, mx_farm):
    """T, then D: the records carry the size, binding group and binding of the message."""
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rcpt = "u@retry.example.test"
    mx1.rcpt_reply = {rcpt: DEFER}
    rig = rig_factory()
    body = message("sizes", to=rcpt)
    msgid = rig.send(SENDER, [rcpt], body)
    (t,) = rig.wait_records(msgid, "T")
    mx1.rcpt_reply = None
    (d,) = rig.wait_records(msgid, "D", timeout=10)
    (m,) = mx1.wait_messages(1)
    assert d.size == len(m.data)  # the size of what is sent: Received header included
    assert (t.bgroup, t.binding, d.bgroup, d.binding) == ("default",) * 4
    assert d.retries == 1 and t.retries == 0
    assert d.connid and t.connid and d.batchid == msgid
    finish(rig, mx1)


def test_connection_lost_mid_transaction_is_retried(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rcpt = "u@retry.example.test"
    mx1.rcpt_reply = {rcpt: DROP}  # the MX hangs up instead of answering RCPT
    rig = rig_factory()
    body = message("dropped", to=rcpt)
    msgid = rig.send(SENDER, [rcpt], body)
    t = rig.wait_records(msgid, "T", n=2, timeout=10)
    assert [r.retries for r in t] == [0, 1] and t[0].stage == 4, t
    assert "closed" in t[0].response, t[0]
    assert t[1].ts - t[0].ts <= 2 and len(mx1.rcpt_attempts(rcpt)) == 2  # backoff, no storm
    mx1.rcpt_reply = None
    (m,) = mx1.wait_messages(1, timeout=10)
    assert m.data.endswith(body)
    rig.wait_records(msgid, "D")
    rig.wait_spool_empty()
    finish(rig, mx1)
