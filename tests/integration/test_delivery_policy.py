"""Per-domain delivery policy (docs/delivery.md, Outcomes and retries):
Suspend_Delivery keeps mail queued until a reload lifts it; Blackhole refuses
recipients at RCPT time (true/inline), fails mail already queued, or (internal)
accepts and drops it silently."""
import time

import pytest

import nsd
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import SmtpError, finish, message
from conftest import wait_for

SENDER = "s@sender.example.test"
SUSPEND = 'Domain "suspend.example.test" { Suspend_Delivery = true }\n'


def test_suspend_delivery_then_reload_delivers(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)  # suspend.example.test's MX
    rig = rig_factory(extra=SUSPEND)
    rcpt = "u@suspend.example.test"
    body = message("suspended", to=rcpt)
    msgid = rig.send(SENDER, [rcpt], body)
    time.sleep(3)  # three maintainer scans (Delayed_Queue_Scan_Interval = 1)
    assert mx1.session_count() == 0, "a suspended domain was attempted"
    assert rig.records(msgid, "DTP") == []
    assert rig.spool_ids() == [msgid]
    sm = rig.spool_message(msgid)
    assert sm.rcpts[0].addr == rcpt and sm.attempts is None  # never attempted

    rig.reload(extra="")  # the option removed
    (m,) = mx1.wait_messages(1, timeout=10)
    assert m.rcpt_tos == [rcpt] and m.data.endswith(body)
    (d,) = rig.wait_records(msgid, "D")
    assert d.retries == 0
    rig.wait_spool_empty()
    finish(rig, mx1)


def test_suspend_keeps_other_domains_flowing(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory(extra=SUSPEND)
    held = rig.send(SENDER, ["u@suspend.example.test"], message("held"))
    rig.check_still_delivers(mx1)  # deliv.example.test, same MX, not suspended
    time.sleep(1)
    assert mx1.received_by("u@suspend.example.test") == []
    assert held in rig.spool_ids()
    rig.assert_clean_stop()
    # still queued across a restart, still suspended
    rig.start()
    time.sleep(2)
    assert mx1.received_by("u@suspend.example.test") == [] and held in rig.spool_ids()
    rig.reload(extra="")
    wait_for(lambda: mx1.received_by("u@suspend.example.test"), timeout=10,
             what="the held message after the reload")
    finish(rig, mx1)


def test_blackhole_refuses_recipients_at_rcpt(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory(extra='Domain "blackhole.example.test" { Blackhole = true }\n')
    s = rig.submitter()
    try:
        s.cmd(f"MAIL FROM:<{SENDER}>", 250)
        code, text = s.cmd("RCPT TO:<u@blackhole.example.test>")
        assert code == 550, text
        assert text.startswith(b"550 5.7.1 "), text
        # the rest of the transaction goes on
        s.cmd("RCPT TO:<u@deliv.example.test>", 250)
        s.cmd("RSET", 250)
    finally:
        s.close()
    with pytest.raises(SmtpError) as e:
        rig.send(SENDER, ["u@blackhole.example.test"], message("blackholed"))
    assert e.value.code == 550
    assert rig.spool_ids() == []
    finish(rig, mx1)


def test_blackhole_fails_mail_already_queued(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    rig = rig_factory(extra=SUSPEND)
    rcpt = "u@suspend.example.test"
    msgid = rig.send(SENDER, [rcpt], message("queued then blackholed", to=rcpt))
    time.sleep(1)
    rig.reload(extra='Domain "suspend.example.test" { Blackhole = true }\n')
    (p,) = rig.wait_records(msgid, "P", timeout=10)
    assert p.response.startswith("554 5.7.1 "), p
    wait_for(lambda: [b for b in snd.received() if rcpt.encode() in b.data], timeout=15,
             what="the bounce for the blackholed recipient")
    rig.wait_spool_empty()
    assert mx1.received_by(rcpt) == []
    finish(rig, mx1)


def test_blackhole_internal_accepts_and_drops_silently(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    rig = rig_factory(extra='Domain "blackhole.example.test" { Blackhole = internal }\n')
    rcpt = "u@blackhole.example.test"
    msgid = rig.send(SENDER, [rcpt], message("dropped", to=rcpt))  # accepted: 250
    wait_for(lambda: rig.records(msgid, "P"), timeout=10, what="the message dropped")
    rig.wait_spool_empty()  # a bounce, if any, has been delivered by now
    assert mx1.received_by(rcpt) == [] and rig.records(msgid, "D") == []
    assert [b for b in snd.received() if b.mail_from == ""] == [], "a bounce was sent"
    finish(rig, mx1)


def test_generate_bounces_false(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    rig = rig_factory(options={"Generate_Bounces": "false"})
    msgid = rig.send(SENDER, ["u@nosuch.example.test"], message("no bounce"))
    (p,) = rig.wait_records(msgid, "P")
    assert p.response.startswith("550 5.1.2"), p
    rig.wait_spool_empty()
    finish(rig, mx1)
    assert snd.received() == [] and snd.session_count() == 0


def test_bounce_of_a_bounce_is_not_sent(rig_factory, mx_farm):
    """The sender's own domain does not exist: the bounce fails too, and is dropped."""
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory()
    msgid = rig.send("s@nosuch.example.test", ["u@nosuch.example.test"], message("double"))
    (p,) = rig.wait_records(msgid, "P")
    def bounce_failed():
        recs = [r for r in rig.records(type="P") if r.msgid != msgid]
        return recs or None
    (bp,) = wait_for(bounce_failed, timeout=10, what="the bounce failing")
    assert bp.response.startswith("550 5.1.2") and bp.domain == "nosuch.example.test"
    rig.wait_spool_empty()
    time.sleep(0.5)
    assert len(rig.records(type="P")) == 2  # no bounce of the bounce
    finish(rig, mx1)
