"""Outbound STARTTLS (docs/delivery.md, Outbound TLS): TLS = required / ifavailable,
TLS_Verify = ca / host with TLS_CA, and TLS_IfAvailable_Fallback after a failed
handshake. The MXs are aiosmtpd servers with certificates from a test CA made with
openssl (delivery_kit.tls_pki); what the MX saw (a TLS session or not) is the oracle.

A connection that cannot be used (no STARTTLS with TLS = required, a certificate that
does not verify) counts as an unreachable address: the message stays queued and the
address rests for Host_Failure_Retry; after MX_Failures_To_Delay such failures in a row
the mail is delayed with a transient failure (T). The tests set MX_Failures_To_Delay = 2
so that the T comes within seconds.
"""
import time

import pytest

import nsd
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import finish, message
from conftest import wait_for

SENDER = "s@sender.example.test"


def domain_tls(domain, **opts):
    body = " ".join(f'{k} = "{v}"' for k, v in opts.items())
    return f'Domain "{domain}" {{ {body} }}\n'


def assert_stays_queued(rig, mx, msgid, rcpt):
    """Transient failure: T records, the message in the spool, nothing at the MX."""
    t = rig.wait_records(msgid, "T", timeout=15)
    assert t[0].response.startswith("4"), t[0]
    assert rig.records(msgid, "DP") == []
    assert msgid in rig.spool_ids()
    assert mx.received_by(rcpt) == []
    assert [a for a in mx.rcpt_attempts() if a.addr == rcpt] == []  # no transaction at all
    return t


def test_required_delivers_over_tls(rig_factory, mx_farm, tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    tmx = mx_farm.add("tls-mx", nsd.MX_TLS, tls_context=tls_pki.context("good"))
    rig = rig_factory(extra=domain_tls("tls.example.test", TLS="required"))
    body = message("over tls", to="u@tls.example.test")
    msgid = rig.send(SENDER, ["u@tls.example.test"], body)
    (m,) = tmx.wait_messages(1)
    assert m.tls and m.session.tls and m.session.cipher, "not delivered over TLS"
    assert m.data.endswith(body)
    assert m.session.helo == "celer.test"
    (d,) = rig.wait_records(msgid, "D")
    assert d.remote_ip == nsd.MX_TLS
    finish(rig, mx1)


def test_required_without_starttls_stays_queued(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    plain = mx_farm.add("tls-mx", nsd.MX_TLS)  # no STARTTLS offered
    rig = rig_factory(options={"MX_Failures_To_Delay": "2"},
                      extra=domain_tls("tls.example.test", TLS="required"))
    rcpt = "u@tls.example.test"
    msgid = rig.send(SENDER, [rcpt], message("needs tls", to=rcpt))
    t = assert_stays_queued(rig, plain, msgid, rcpt)
    assert "STARTTLS not offered" in t[0].response, t[0]
    assert plain.session_count() >= 2  # it was tried (and retried), never used
    time.sleep(1)
    assert rig.records(msgid, "DP") == [] and plain.received() == []
    finish(rig, mx1)


def test_ifavailable_uses_tls_when_offered_and_plaintext_otherwise(rig_factory, mx_farm,
                                                                     tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)  # plaintext only
    tmx = mx_farm.add("tls-mx", nsd.MX_TLS, tls_context=tls_pki.context("good"))
    rig = rig_factory(options={"TLS": "ifavailable"})
    id1 = rig.send(SENDER, ["u@tls.example.test"], message("opportunistic", to="u@tls.example.test"))
    id2 = rig.send(SENDER, ["u@deliv.example.test"], message("plain", to="u@deliv.example.test"))
    (m1,) = tmx.wait_messages(1)
    (m2,) = mx1.wait_messages(1)
    assert m1.tls and tmx.sessions[0].tls
    assert not m2.tls and not mx1.sessions[0].tls
    rig.wait_records(id1, "D")
    rig.wait_records(id2, "D")
    finish(rig, mx1)


def test_verify_ca_with_the_test_ca(rig_factory, mx_farm, tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    tmx = mx_farm.add("tls-mx", nsd.MX_TLS, tls_context=tls_pki.context("good"))
    rig = rig_factory(extra=domain_tls("tls.example.test", TLS="required", TLS_Verify="ca",
                                       TLS_CA=tls_pki.ca))
    rcpt = "u@tls.example.test"
    msgid = rig.send(SENDER, [rcpt], message("right ca", to=rcpt))
    (m,) = tmx.wait_messages(1)
    assert m.tls
    rig.wait_records(msgid, "D")
    finish(rig, mx1)


def test_verify_ca_with_another_ca_stays_queued(rig_factory, mx_farm, tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    tmx = mx_farm.add("tls-mx", nsd.MX_TLS, tls_context=tls_pki.context("good"))
    rig = rig_factory(options={"MX_Failures_To_Delay": "2"},
                      extra=domain_tls("tls.example.test", TLS="required", TLS_Verify="ca",
                                       TLS_CA=tls_pki.other_ca))
    rcpt = "u@tls.example.test"
    msgid = rig.send(SENDER, [rcpt], message("wrong ca", to=rcpt))
    t = assert_stays_queued(rig, tmx, msgid, rcpt)
    assert "certificate verify failed" in t[0].response, t[0]
    assert tmx.session_count() >= 2 and not tmx.received()
    finish(rig, mx1)


def test_verify_host_refuses_a_certificate_for_another_name(rig_factory, mx_farm, tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    wrong = mx_farm.add("tls-wrong-mx", nsd.MX_TLS_WRONG,
                        tls_context=tls_pki.context("wrong-name"))
    rig = rig_factory(options={"MX_Failures_To_Delay": "2"},
                      extra=domain_tls("tlswrong.example.test", TLS="required",
                                       TLS_Verify="host", TLS_CA=tls_pki.ca))
    rcpt = "u@tlswrong.example.test"
    msgid = rig.send(SENDER, [rcpt], message("wrong name", to=rcpt))
    t = assert_stays_queued(rig, wrong, msgid, rcpt)
    assert "certificate name mismatch" in t[0].response, t[0]
    assert wrong.session_count() >= 2
    finish(rig, mx1)


def test_verify_host_accepts_the_certificate_of_the_mx(rig_factory, mx_farm, tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    tmx = mx_farm.add("tls-mx", nsd.MX_TLS, tls_context=tls_pki.context("good"))
    rig = rig_factory(options={"MX_Failures_To_Delay": "2"},
                      extra=domain_tls("tls.example.test", TLS="required", TLS_Verify="host",
                                       TLS_CA=tls_pki.ca))
    rcpt = "u@tls.example.test"
    msgid = rig.send(SENDER, [rcpt], message("right name", to=rcpt))
    wait_for(lambda: tmx.received_by(rcpt), timeout=5,
             what="delivery to the MX named in its certificate")
    assert tmx.received_by(rcpt)[0].tls
    rig.wait_records(msgid, "D")
    finish(rig, mx1)


def test_verify_ca_accepts_the_wrong_name(rig_factory, mx_farm, tls_pki):
    """The control for the tests above: a certificate for another name passes
    TLS_Verify = "ca"."""
    mx1 = mx_farm.add("mx1", nsd.MX1)
    wrong = mx_farm.add("tls-wrong-mx", nsd.MX_TLS_WRONG,
                        tls_context=tls_pki.context("wrong-name"))
    rig = rig_factory(extra=domain_tls("tlswrong.example.test", TLS="required",
                                       TLS_Verify="ca", TLS_CA=tls_pki.ca))
    rcpt = "u@tlswrong.example.test"
    msgid = rig.send(SENDER, [rcpt], message("ca only", to=rcpt))
    (m,) = wrong.wait_messages(1)
    assert m.tls
    rig.wait_records(msgid, "D")
    finish(rig, mx1)


def test_tls_policy_holds_for_domains_sharing_an_mx(rig_factory, mx_farm, tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    tmx = mx_farm.add("tls-mx", nsd.MX_TLS, tls_context=tls_pki.context("good"))
    tmx.starttls_delay = 0.5  # the TLS session of tls2 comes up after the plaintext one
    # tls and tls2 share tls-mx; one event loop, so both queues can see each other
    rig = rig_factory(loops=1, extra=domain_tls("tls.example.test", TLS="no")
                      + domain_tls("tls2.example.test", TLS="required"))
    a, b = "u@tls.example.test", "u@tls2.example.test"
    msgid = rig.send(SENDER, [a, b], message("shared mx", to=a))
    wait_for(lambda: tmx.received_by(a) and tmx.received_by(b), timeout=15,
             what="both copies at the shared MX")
    assert not tmx.received_by(a)[0].tls
    assert tmx.received_by(b)[0].tls, "TLS = required domain delivered in plaintext"
    assert len(rig.wait_records(msgid, "D", n=2)) == 2
    tmx.starttls_delay = 0
    finish(rig, mx1)


def test_ifavailable_fallback_to_plaintext_after_failed_handshake(rig_factory, mx_farm,
                                                                   tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    broken = mx_farm.add("tls-broken-mx", nsd.MX_TLS_BROKEN, broken_tls=True,
                         tls_context=tls_pki.context("good"))
    rig = rig_factory(extra=domain_tls("tlsbroken.example.test", TLS="ifavailable",
                                       TLS_IfAvailable_Fallback="true"))
    rcpt = "u@tlsbroken.example.test"
    body = message("fallback", to=rcpt)
    msgid = rig.send(SENDER, [rcpt], body)
    (m,) = broken.wait_messages(1)
    assert not m.tls and m.data.endswith(body)
    assert broken.broken_tls_attempts >= 1  # STARTTLS was tried first
    (d,) = rig.wait_records(msgid, "D")
    assert rig.records(msgid, "TP") == []
    finish(rig, mx1)


def test_ifavailable_without_fallback_stays_queued(rig_factory, mx_farm, tls_pki):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    broken = mx_farm.add("tls-broken-mx", nsd.MX_TLS_BROKEN, broken_tls=True,
                         tls_context=tls_pki.context("good"))
    rig = rig_factory(options={"MX_Failures_To_Delay": "2"},
                      extra=domain_tls("tlsbroken.example.test", TLS="ifavailable",
                                       TLS_IfAvailable_Fallback="false"))
    rcpt = "u@tlsbroken.example.test"
    msgid = rig.send(SENDER, [rcpt], message("no fallback", to=rcpt))
    t = assert_stays_queued(rig, broken, msgid, rcpt)
    assert "TLS handshake failed" in t[0].response, t[0]
    assert broken.broken_tls_attempts >= 1
    finish(rig, mx1)
