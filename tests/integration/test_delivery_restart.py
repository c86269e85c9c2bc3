"""Restarting with mail in the delayed queue (docs/delivery.md, Durability): the spool
keeps the attempt count, the next attempt time and the recipients already final, so
after a restart the retries continue from the recorded count, the next attempt time is
respected, and no recipient gets the message twice."""
import time

import nsd
import spoolfile
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import finish, message
from conftest import wait_for

SENDER = "s@sender.example.test"
DEFER = "451 4.7.1 not now"


def test_retries_continue_after_restart(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rcpt = "u@restart.example.test"
    mx1.rcpt_reply = {rcpt: DEFER}
    rig = rig_factory(options={"Retry_Interval": "1", "Max_Retry_Interval": "4"})
    body = message("survives restarts", to=rcpt)
    msgid = rig.send(SENDER, [rcpt], body)
    t = rig.wait_records(msgid, "T", n=2, timeout=15)  # attempts 1 and 2; the next waits 2 s
    assert [r.retries for r in t] == [0, 1]
    rig.assert_clean_stop()
    stopped = time.time()

    sm = rig.spool_message(msgid)
    assert sm.attempts == 2, sm.attempts
    assert sm.next_attempt >= t[1].ts + 1 and sm.next_attempt > stopped
    assert [r.state for r in sm.rcpts] == [spoolfile.STATE_PENDING]
    assert sm.response.startswith("451")
    n_before = len(mx1.rcpt_attempts(rcpt))

    rig.start()
    attempts = mx1.wait_rcpt_attempts(n_before + 1, rcpt, timeout=15)
    first_after = attempts[n_before]
    assert first_after.wall >= sm.next_attempt - 0.05, \
        f"retried at {first_after.wall:.2f}, next attempt was {sm.next_attempt}"
    assert first_after.wall <= sm.next_attempt + 2.0, "the recorded next attempt was not kept"
    t = rig.wait_records(msgid, "T", n=3)
    assert t[2].retries == 2, t[2]  # counting goes on from the spool, not from 0
    assert t[2].secs > t[1].secs

    mx1.rcpt_reply = None
    (m,) = mx1.wait_messages(1, timeout=20)
    assert m.rcpt_tos == [rcpt] and m.data.endswith(body)
    (d,) = rig.wait_records(msgid, "D", timeout=10)
    assert d.retries == len(rig.records(msgid, "T"))
    rig.wait_spool_empty()
    time.sleep(1)
    assert len(mx1.received_by(rcpt)) == 1
    finish(rig, mx1)


def test_recipient_delivered_before_restart_is_not_sent_again(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    done, later = "done@restart.example.test", "later@restart.example.test"
    mx1.rcpt_reply = {later: DEFER}
    rig = rig_factory()
    body = message("two recipients", to=done)
    msgid = rig.send(SENDER, [done, later], body)
    (m,) = mx1.wait_messages(1)
    assert m.rcpt_tos == [done]
    rig.wait_records(msgid, "D")
    rig.wait_records(msgid, "T")

    def recorded():
        sm = rig.spool_message(msgid)
        return sm if sm.attempts == 1 else None
    sm = wait_for(recorded, timeout=5, what="the PROGRESS record")
    assert [r.state for r in sm.rcpts] == [spoolfile.STATE_DELIVERED, spoolfile.STATE_PENDING]
    rig.assert_clean_stop()
    assert rig.spool_message(msgid).rcpts[0].state == spoolfile.STATE_DELIVERED

    mx1.rcpt_reply = None
    rig.start()
    wait_for(lambda: mx1.received_by(later), timeout=15, what="the second recipient delivered")
    rig.wait_spool_empty()
    time.sleep(1)
    assert len(mx1.received_by(done)) == 1, "delivered twice to a recipient recorded as final"
    assert len(mx1.rcpt_attempts(done)) == 1
    (second,) = mx1.received_by(later)
    assert second.rcpt_tos == [later] and second.data == m.data
    d = rig.records(msgid, "D")
    assert len(d) == 2 and sorted(r.retries for r in d) == [0, 1]
    finish(rig, mx1)
