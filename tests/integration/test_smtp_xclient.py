"""XCLIENT (Postfix's proxy extension), allowed only where SMTP_Extensions lists
it: the announced ADDR/HELO/LOGIN replace the proxy's for the Received header,
the spool, the logs and relay control. Also: IPv6 clients in the Received header."""
import pytest

from smtpkit import HOSTNAME, ipv6_loopback, simple_body, start_server

XCLIENT_CAP = "XCLIENT NAME ADDR PORT PROTO HELO LOGIN"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    listens = {
        # the proxy (127.0.0.1) may relay itself; the clients behind it may not
        "proxy": ("127.0.0.1", 'SMTP_Extensions = ( "XCLIENT" )\nRelay_Hosts = ( "127.0.0.1" )'),
        # only the clients behind the proxy (10.0.0.0/8) may relay
        "proxy10": ("127.0.0.1", 'SMTP_Extensions = ( "XCLIENT" )\nRelay_Hosts = ( "10.0.0.0/8" )'),
        # both the proxy and the clients behind it may relay
        "proxyall": ("127.0.0.1", 'SMTP_Extensions = ( "XCLIENT" )\n'
                                  'Relay_Hosts = ( "127.0.0.1" "10.0.0.0/8" "2001:db8::/32" )'),
        # XCLIENT for one peer only
        "peer": ("127.0.0.1", 'Relay_Hosts = ( "127.0.0.0/8" )\n'
                              'Peer "127.0.0.5/32" { SMTP_Extensions = ( "XCLIENT" ) }'),
    }
    if ipv6_loopback():
        listens["v6"] = ("::1", 'Relay_Hosts = ( "::1" )')
    s = start_server(tmp_path_factory, "xclient", listens=listens)
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def xclient(c, args, helo="after.xclient.test"):
    r = c.cmd(f"XCLIENT {args}")
    assert r.code == 220 and r.lines[0] == f"{HOSTNAME} ESMTP celer", r  # a fresh greeting
    if helo:
        c.ehlo(helo)
    return r


def test_xclient_offered_and_refused_per_configuration(srv):
    with srv.session("proxy") as c:
        assert XCLIENT_CAP in c.ehlo().lines
    with srv.session("main") as c:
        assert not any(l.startswith("XCLIENT") for l in c.ehlo().lines)
        r = c.cmd("XCLIENT ADDR=10.0.0.9")
        assert r == (550, "5.7.0"), r
        # nothing changed: still the real client
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body("no xclient"))
    assert srv.message(r.queued_id).source_ip == "127.0.0.1"


def test_xclient_only_for_the_listed_peer(srv):
    with srv.session("peer", source="127.0.0.1") as c:
        assert c.cmd("XCLIENT ADDR=10.0.0.9") == (550, "5.7.0")
    with srv.session("peer", source="127.0.0.5") as c:
        assert XCLIENT_CAP in c.ehlo().lines
        xclient(c, "ADDR=10.0.0.9")


def test_announced_address_and_helo_are_used(srv):
    with srv.session("proxyall") as c:
        xclient(c, "ADDR=10.0.0.9 NAME=client.example HELO=real.client.test", helo=None)
        c.ehlo("real.client.test")
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body("via proxy"))
        assert r.queued_id
    m = srv.message(r.queued_id)
    assert m.source_ip == "10.0.0.9" and m.helo == "real.client.test"
    assert m.prepend.startswith(b"Received: from real.client.test ([10.0.0.9])\r\n")
    assert srv.receptions(r.queued_id)[0][9] == "10.0.0.9"


def test_xclient_helo_alone(srv):
    with srv.session("proxyall") as c:
        r = c.cmd("XCLIENT HELO=proxied.helo.test")
        assert r.code == 220
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@rcpt.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(simple_body("helo only") + b".\r\n")
        r = c.read_reply()
    assert srv.message(r.queued_id).helo == "proxied.helo.test"


def test_xclient_login_counts_as_authenticated(srv):
    with srv.session("proxy10") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<x@outside.test>") == (550, "5.7.1")
        assert c.cmd("RSET").code == 250
        xclient(c, "LOGIN=bob")
        r = c.mail_txn("bob@sender.test", ["x@outside.test"], simple_body("login"))
    assert srv.message(r.queued_id).auth_user == "bob"


def test_relay_control_uses_the_announced_address(srv):
    # proxy not in Relay_Hosts, announced client is: relaying allowed
    with srv.session("proxy10") as c:
        xclient(c, "ADDR=10.0.0.9")
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        r1 = c.cmd("RCPT TO:<x@outside.test>")
    # proxy in Relay_Hosts, announced client is not: relaying denied
    with srv.session("proxy") as c:
        xclient(c, "ADDR=10.0.0.9")
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        r2 = c.cmd("RCPT TO:<x@outside.test>")
    assert (r1.code, r2.code) == (250, 550), (r1, r2)


def test_rejectlog_names_the_announced_client(srv):
    with srv.session("proxy") as c:
        assert c.cmd("FROB") == (500, "5.5.1")
        connid = srv.rejects_for(c)[0]["C"]  # the session's id, to find its later lines
        xclient(c, "ADDR=10.0.0.9 PORT=4567")
        assert c.cmd("FROB") == (500, "5.5.1")
        rej = srv.rejects_by_connid(connid, 2)
    assert rej[1]["R"].startswith("10.0.0.9:"), rej[1]


def test_xclient_errors(srv):
    with srv.session("proxy") as c:
        assert c.cmd("XCLIENT") == (501, "5.5.4")
        assert c.cmd("XCLIENT ADDR=not-an-ip") == (501, "5.5.4")
        assert c.cmd("XCLIENT FROB=1") == (501, "5.5.4")
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("XCLIENT ADDR=10.0.0.9") == (503, "5.5.1")  # not inside a transaction
        assert c.cmd("RSET").code == 250
        xclient(c, "ADDR=[UNAVAILABLE]")


def test_xclient_ipv6_address_in_received(srv):
    with srv.session("proxyall") as c:
        xclient(c, "ADDR=IPV6:2001:db8::9")
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body("v6 via proxy"))
    m = srv.message(r.queued_id)
    assert m.source_ip == "2001:db8::9"


def test_received_uses_the_ipv6_address_literal(srv):
    with srv.session("proxyall") as c:
        xclient(c, "ADDR=IPV6:2001:db8::9")
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body("v6 literal"))
    assert srv.message(r.queued_id).prepend.startswith(
        b"Received: from after.xclient.test ([IPv6:2001:db8::9])\r\n")


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_real_ipv6_client(srv):
    with srv.session("v6", helo="v6.client.test") as c:
        assert c.cmd("FROB") == (500, "5.5.1")
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body("ipv6"))
        rej = srv.rejects_for(c)
    m = srv.message(r.queued_id)
    assert m.source_ip == "::1"
    assert rej[0]["R"] == c.remote_str and rej[0]["R"].startswith("[::1]:")
    assert srv.receptions(r.queued_id)[0][9] == "::1"


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
