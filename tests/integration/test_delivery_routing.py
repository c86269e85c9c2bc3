"""Where celerd sends mail: MX preference, fallback (refused connection, 421 greeting),
equal preferences, implicit MX, null MX, NXDOMAIN, DNS failures, a 5xx greeting,
Routes, Gateway, LMTP and a reload of Remote_SMTP_Port (docs/delivery.md, Routing).

DNS is NSD serving nsd.EXAMPLE_TEST_ZONE; the MXs are aiosmtpd servers on the
zone's 127.0.0.x addresses and the farm's port (Remote_SMTP_Port).
"""
import time

import pytest

import nsd
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import finish, message
from mx import MxFarm
from conftest import wait_for

SENDER = "s@sender.example.test"


def bounce_for(mx_sender, failed_rcpt, timeout=20):
    """The bounce that reached the sender's MX and names failed_rcpt."""
    def get():
        for m in mx_sender.received():
            if m.mail_from == "" and failed_rcpt.encode() in m.data:
                return m
        return None
    return wait_for(get, timeout=timeout, what=f"a bounce for {failed_rcpt} at the sender's MX")


def test_lowest_preference_first(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx2 = mx_farm.add("mx2", nsd.MX2)
    rig = rig_factory()
    ids = [rig.send(SENDER, [f"u{i}@pref.example.test"], message(f"pref {i}")) for i in range(5)]
    mx1.wait_messages(5)
    for i in ids:
        (d,) = rig.wait_records(i, "D")
        assert d.remote_ip == nsd.MX1 and d.domain == "pref.example.test" and d.retries == 0
    time.sleep(0.5)
    assert mx2.received() == [] and mx2.session_count() == 0
    finish(rig, mx1)


def test_fallback_when_best_mx_refuses_connections(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx2 = mx_farm.add("mx2", nsd.MX2)
    rig = rig_factory()
    # nothing listens on dead-mx (pref 10): connect() is refused, mx2 (pref 20) takes it
    msgid = rig.send(SENDER, ["u@fallback.example.test"], message("fallback"))
    (m,) = mx2.wait_messages(1)
    assert m.rcpt_tos == ["u@fallback.example.test"]
    (d,) = rig.wait_records(msgid, "D")
    assert d.remote_ip == nsd.MX2
    assert rig.records(msgid, "TP") == []  # the refusal is not a failure of the message
    finish(rig, mx1)


def test_fallback_when_best_mx_answers_421(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx2 = mx_farm.add("mx2", nsd.MX2)
    mx3 = mx_farm.add("mx3", nsd.MX3, greeting="421 4.3.2 too busy, try another MX")
    rig = rig_factory()
    msgid = rig.send(SENDER, ["u@busy.example.test"], message("busy"))
    (m,) = mx2.wait_messages(1)
    assert m.rcpt_tos == ["u@busy.example.test"]
    (d,) = rig.wait_records(msgid, "D")
    assert d.remote_ip == nsd.MX2
    assert mx3.session_count() >= 1, "the best MX was not tried first"
    assert mx3.sessions[0].start <= m.time
    finish(rig, mx1)


def test_equal_preferences_spread_over_both(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx2 = mx_farm.add("mx2", nsd.MX2)
    # one connection per queue, used for one message: every message needs a new choice
    rig = rig_factory(options={"Max_Deliveries_Per_Connection": "1"})
    rcpts = [f"u{i}@equal.example.test" for i in range(20)]
    ids = []
    s = rig.submitter()
    for i, r in enumerate(rcpts):
        ids.append(s.send(SENDER, [r], message(f"equal {i}", to=r)))
    s.close()
    wait_for(lambda: len(mx1.received()) + len(mx2.received()) >= 20, timeout=30,
             what="20 messages over mx1 and mx2")
    got = sorted(r for m in mx1.received() + mx2.received() for r in m.rcpt_tos)
    assert got == sorted(rcpts)  # each exactly once
    assert mx1.received() and mx2.received(), \
        f"mx1 got {len(mx1.received())}, mx2 got {len(mx2.received())}"
    ips = {rec.remote_ip for i in ids for rec in rig.wait_records(i, "D")}
    assert ips == {nsd.MX1, nsd.MX2}
    finish(rig, mx1)


def test_implicit_mx_is_the_a_record(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    host = mx_farm.add("implicit", nsd.IMPLICIT)
    rig = rig_factory()
    msgid = rig.send(SENDER, ["u@implicit.example.test"], message("implicit"))
    (m,) = host.wait_messages(1)
    assert m.rcpt_tos == ["u@implicit.example.test"]
    (d,) = rig.wait_records(msgid, "D")
    assert d.remote_ip == nsd.IMPLICIT
    finish(rig, mx1)


def test_null_mx_fails_permanently_with_bounce(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)  # nullmx.example.test's A record points here
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    rig = rig_factory()
    msgid = rig.send(SENDER, ["u@nullmx.example.test"], message("null mx"))
    (p,) = rig.wait_records(msgid, "P")
    assert p.response.startswith("556 5.1.10 "), p
    assert p.domain == "nullmx.example.test" and p.stage == 0 and p.remote_ip == ""
    b = bounce_for(snd, "u@nullmx.example.test")
    assert b.rcpt_tos == [SENDER]
    assert b"556 5.1.10" in b.data
    rig.wait_spool_empty()
    assert mx1.received() == [] and mx1.session_count() == 0
    finish(rig, mx1)


def test_nxdomain_fails_permanently_with_bounce(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    rig = rig_factory()
    msgid = rig.send(SENDER, ["u@nosuch.example.test"], message("nxdomain"))
    (p,) = rig.wait_records(msgid, "P")
    assert p.response.startswith("550 5.1.2 "), p
    assert p.domain == "nosuch.example.test"
    b = bounce_for(snd, "u@nosuch.example.test")
    assert b"550 5.1.2" in b.data
    rig.wait_spool_empty()
    finish(rig, mx1)


def test_dns_failure_is_transient_then_purged(rig_factory, mx_farm):
    """NSD does not serve example.: it answers REFUSED, which the stub resolver reports as
    SERVFAIL. The message gets T records mentioning DNS and stays in the spool; after
    DNS_Failures_To_Purge (2) failed lookups it fails for good. A failed lookup is cached
    for 30 s (docs/delivery.md), so the second lookup, and the P, come about 30 s later."""
    mx1 = mx_farm.add("mx1", nsd.MX1)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    rig = rig_factory(options={"DNS_Failures_To_Purge": "2"})
    rcpt = "u@unserved.example"
    msgid = rig.send(SENDER, [rcpt], message("servfail"))
    t = rig.wait_records(msgid, "T", n=2, timeout=20)
    assert t[0].response.startswith("451 4.4.3 ") and "DNS" in t[0].response, t[0]
    assert [r.retries for r in t[:2]] == [0, 1]
    assert rig.records(msgid, "P") == []
    assert msgid in rig.spool_ids()
    assert rig.spool_message(msgid).attempts >= 1
    # other domains are not affected by the failing one
    rig.check_still_delivers(mx1)
    (p,) = rig.wait_records(msgid, "P", timeout=45)
    assert p.response.startswith("554 5.4.4 ") and "DNS" in p.response, p
    assert "failed 2 times" in p.response, p  # counted per lookup, not per retry
    bounce_for(snd, rcpt)
    wait_for(lambda: msgid not in rig.spool_ids(), timeout=10, what="the purged message removed")
    finish(rig, mx1)


# ---- configured routes ----


def test_routes_bypass_dns(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    gw = mx_farm.add("gateway", nsd.GATEWAY)
    # x.test is not in DNS at all (NSD refuses it): only the route can deliver it
    rig = rig_factory(extra=f'Domain "x.test" {{ Routes = ( "smtp://{nsd.GATEWAY}?port={mx_farm.port}" ) }}\n')
    msgid = rig.send(SENDER, ["u@x.test"], message("routed"))
    (m,) = gw.wait_messages(1)
    assert m.rcpt_tos == ["u@x.test"]
    (d,) = rig.wait_records(msgid, "D")
    assert d.remote_ip == nsd.GATEWAY and d.domain == "x.test"
    finish(rig, mx1)


def test_gateway_in_domain_overrides_mx(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    gw = mx_farm.add("gateway", nsd.GATEWAY)
    rig = rig_factory(extra=f'Domain "gw.example.test" {{ Gateway = "{nsd.GATEWAY}:{mx_farm.port}" }}\n')
    msgid = rig.send(SENDER, ["u@gw.example.test"], message("gateway"))
    (m,) = gw.wait_messages(1)
    assert m.rcpt_tos == ["u@gw.example.test"]
    (d,) = rig.wait_records(msgid, "D")
    assert d.remote_ip == nsd.GATEWAY
    # other domains still go by MX
    finish(rig, mx1)
    assert not any("gw.example.test" in r for m in mx1.received() for r in m.rcpt_tos)


def test_gateway_in_binding_takes_all_mail(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    gw = mx_farm.add("gateway", nsd.GATEWAY)
    rig = rig_factory(extra=f'Binding "default" {{ Gateway = "{nsd.GATEWAY}:{mx_farm.port}" }}\n')
    rcpts = ["u@deliv.example.test", "u@nosuch.example.test", "u@unserved.example"]
    ids = [rig.send(SENDER, [r], message(f"bgw {i}", to=r)) for i, r in enumerate(rcpts)]
    gw.wait_messages(3)
    assert sorted(r for m in gw.received() for r in m.rcpt_tos) == sorted(rcpts)
    for i in ids:
        (d,) = rig.wait_records(i, "D")
        assert d.remote_ip == nsd.GATEWAY
    assert mx1.received() == []
    finish(rig, gw)


def test_lmtp_delivery_on_lmtp_port(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    lfarm = MxFarm()  # its own port: proves LMTP_Port, not Remote_SMTP_Port, is used
    try:
        lmtp = lfarm.add("lmtp-mx", nsd.MX_LMTP, lmtp=True)
        lmtp.data_reply = {"bad@lmtp.example.test": "550 5.1.1 mailbox unavailable"}
        rig = rig_factory(extra=f'Domain "lmtp.example.test" {{ Delivery_Method = "LMTP" '
                                f'LMTP_Port = {lfarm.port} }}\n')
        body = message("lmtp")
        msgid = rig.send(SENDER, ["good@lmtp.example.test", "bad@lmtp.example.test"], body)
        (m,) = lmtp.wait_messages(1)
        assert m.rcpt_tos == ["good@lmtp.example.test"]
        assert lmtp.sessions[0].helo == "celer.test"  # LHLO (aiosmtpd's LMTP refuses EHLO)
        assert m.data.endswith(body)
        (d,) = rig.wait_records(msgid, "D")
        (p,) = rig.wait_records(msgid, "P")
        assert d.remote_ip == nsd.MX_LMTP
        assert p.response.startswith("550 5.1.1 mailbox unavailable"), p
        b = bounce_for(snd, "bad@lmtp.example.test")
        assert b"good@lmtp.example.test" not in b.data.split(b"----- The headers")[0]
        rig.wait_spool_empty()
        finish(rig, mx1)
    finally:
        lfarm.close()


def test_routes_by_preference_with_host_names(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx2 = mx_farm.add("mx2", nsd.MX2)
    # dead-mx (pref 5) refuses connections; mx1 (10) comes before mx2 (20); the MX record
    # of routed.example.test (mx1) plays no part
    rig = rig_factory(extra='Domain "routed.example.test" { Routes = ( '
                            '"smtp://mx2.example.test?pref=20" "smtp://dead-mx.example.test?pref=5" '
                            '"smtp://mx1.example.test?pref=10" ) }\n')
    ids = [rig.send(SENDER, [f"u{i}@routed.example.test"], message(f"routes {i}")) for i in range(3)]
    mx1.wait_messages(3)
    for i in ids:
        (d,) = rig.wait_records(i, "D")
        assert d.remote_ip == nsd.MX1
    assert mx2.received() == []
    finish(rig, mx1)


def test_routes_with_host_and_mx_entries(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    # "__mx__" adds the domain's MX hosts (gw.example.test: mx1) after the dead route
    rig = rig_factory(extra='Domain "gw.example.test" { Routes = ( '
                            '"smtp://dead-mx.example.test?pref=1" "__mx__" ) }\n')
    msgid = rig.send(SENDER, ["u@gw.example.test"], message("routes mx"))
    wait_for(lambda: mx1.received_by("u@gw.example.test"), timeout=15, what="__mx__ route used")
    (d,) = rig.wait_records(msgid, "D")
    assert d.remote_ip == nsd.MX1
    finish(rig, mx1)


def test_5xx_greeting_fails_the_mail(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx2 = mx_farm.add("mx2", nsd.MX2)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    mx_farm.add("mx3", nsd.MX3, greeting="554 5.7.1 no mail from you")
    rig = rig_factory()
    rcpt = "u@busy.example.test"
    msgid = rig.send(SENDER, [rcpt], message("refused", to=rcpt))
    (p,) = rig.wait_records(msgid, "P")
    assert p.response.startswith("554 5.7.1 no mail from you"), p
    bounce_for(snd, rcpt)
    rig.wait_spool_empty()
    assert mx2.received() == []
    finish(rig, mx1)


def test_reload_of_remote_smtp_port_applies_to_new_connections(rig_factory, mx_farm):
    old = mx_farm.add("mx1", nsd.MX1)
    farm2 = MxFarm()  # the same address, another port
    try:
        new = farm2.add("mx1", nsd.MX1)
        rig = rig_factory()
        rig.send(SENDER, ["u1@deliv.example.test"], message("before reload"))
        old.wait_messages(1)
        old.wait_idle()  # the connection is gone (Idle_Timeout): the next one is new
        rig.farm = farm2
        rig.reload()  # Remote_SMTP_Port = farm2's port
        msgid = rig.send(SENDER, ["u2@deliv.example.test"], message("after reload"))
        wait_for(lambda: old.received_by("u2@deliv.example.test")
                 or new.received_by("u2@deliv.example.test"), timeout=10, what="delivery")
        assert new.received_by("u2@deliv.example.test"), "delivered to the old port"
        rig.wait_records(msgid, "D")
        finish(rig, new)
    finally:
        farm2.close()
