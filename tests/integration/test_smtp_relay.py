"""Relay control: Relay_Hosts, Open_Relay in Peer scopes, Relay_Domains (exact and
"*.x.com"), SMTP AUTH and verified client certificates. Clients bind 127.0.0.x
source addresses to be different peers."""
import base64
import ssl

import pytest

from smtpkit import simple_body, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    cert, key = tls_cert
    d = tmp_path_factory.mktemp("relay_auth")
    (d / "passwd").write_text("alice:secret\n")
    s = start_server(tmp_path_factory, "relay", listens={
        "relayhost": ("127.0.0.1", 'Relay_Hosts = ( "127.0.0.1" )'),
        "excluded": ("127.0.0.1", 'Relay_Hosts = ( "10.0.0.0/8" "127.0.0.2/32" )'),
        "peer": ("127.0.0.1", 'Peer "127.0.0.0/24" { Open_Relay = false }\n'
                              'Peer "127.0.0.3/32" { Open_Relay = true }'),
        "domains": ("127.0.0.1", 'Pathway = "inbound"'),
        "auth": ("127.0.0.1", 'SMTP_Extensions = ( "AUTH PLAIN" )\nAuth_Allow_Plaintext = true\n'
                              f'AuthPlainParameters = [ uri = "file://{d}/passwd" ]'),
        "cert": ("127.0.0.1", f'TLS_Certificate = "{cert}"\nTLS_Key = "{key}"\n'
                              f'TLS_Client_CA = "{cert}"\nTLS_Verified_Peer_Can_Relay = true'),
    }, global_extra='Pathway "inbound" { Relay_Domains = ( "local.test" "*.x.com" ) }\n',
        listener_extra='Peer "127.0.0.4/32" { Open_Relay = true }\n')
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def rcpt(srv, listen, source, addr, helo="client.test"):
    """(reply to RCPT, client) for one recipient in a fresh session."""
    c = srv.session(listen, source=source, helo=helo)
    assert c.cmd("MAIL FROM:<s@sender.test>") == (250, "2.1.0")
    r = c.cmd(f"RCPT TO:<{addr}>")
    return r, c


def allowed(srv, listen, source, addr="r@outside.test"):
    r, c = rcpt(srv, listen, source, addr)
    with c:
        assert r == (250, "2.1.5"), (listen, source, addr, r)
        assert c.cmd("DATA").code == 354
        c.send(simple_body("relay ok") + b".\r\n")
        done = c.read_reply()
        assert done.queued_id, done
    m = srv.message(done.queued_id)
    local, _, domain = addr.rpartition("@")
    # the local part is kept as sent; the domain is stored in lower case
    assert [x.addr for x in m.rcpts] == [f"{local}@{domain.lower()}"]
    assert m.source_ip == source


def denied(srv, listen, source, addr="r@outside.test", path=""):
    r, c = rcpt(srv, listen, source, addr)
    with c:
        assert r == (550, "5.7.1") and r.msg == "Relaying denied", (listen, source, addr, r)
        rej = srv.rejects_for(c)[0]
        host, port = srv.addr[listen]
        assert rej["R"] == f"{source}:{c.local_port}"
        assert rej["L"] == f"{host}:{port}"
        assert (rej["P"], rej["E"], rej["M"]) == ("rcptto", "550", "esmtp")
        assert rej["PATH"] == path
        assert rej["CTXCONN"] == "ehlo_domain=client.test"
        assert rej["reason"] == "550 5.7.1 Relaying denied"
        assert rej["C"] and int(rej["ts"]) > 0
        # the session goes on: the transaction is still open without that recipient
        assert c.cmd("DATA") == (554, "5.5.1")


def test_relay_hosts_includes_the_client(srv):
    allowed(srv, "relayhost", "127.0.0.1")


def test_relay_hosts_excludes_the_client(srv):
    denied(srv, "relayhost", "127.0.0.2")


def test_relay_hosts_cidr_list(srv):
    denied(srv, "excluded", "127.0.0.1")
    allowed(srv, "excluded", "127.0.0.2")


def test_open_relay_in_the_most_specific_peer(srv):
    allowed(srv, "peer", "127.0.0.3")
    denied(srv, "peer", "127.0.0.1")


def test_open_relay_in_a_listener_level_peer(srv):
    allowed(srv, "excluded", "127.0.0.4")
    allowed(srv, "domains", "127.0.0.4")


@pytest.mark.parametrize("addr, ok", [
    ("a@local.test", True),
    ("Mixed.Case@local.test", True),
    ("a@LOCAL.Test", True),
    ("a@sub.local.test", False),      # exact entry: the domain only
    ("a@a.x.com", True),              # "*.x.com": below x.com
    ("a@deep.a.x.com", True),
    ("a@A.X.COM", True),
    ("a@x.com", False),               # ... but not x.com itself
    ("a@ax.com", False),
    ("a@x.com.evil.test", False),
])
def test_relay_domains(srv, addr, ok):
    if ok:
        allowed(srv, "domains", "127.0.0.1", addr)
    else:
        denied(srv, "domains", "127.0.0.1", addr, path="inbound")


def test_authenticated_client_may_relay(srv):
    denied(srv, "auth", "127.0.0.1")
    with srv.session("auth") as c:
        r = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0secret").decode())
        assert r == (235, "2.7.0")
        r = c.mail_txn("alice@sender.test", ["r@outside.test"], simple_body("auth relay"))
        assert r.queued_id
    assert srv.message(r.queued_id).auth_user == "alice"


def cert_session(srv, with_cert, tls_cert):
    c = srv.session("cert")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if with_cert:
        ctx.load_cert_chain(*tls_cert)
    c.starttls(ctx)
    c.ehlo()
    return c


def test_verified_client_certificate_may_relay(srv, tls_cert):
    with cert_session(srv, True, tls_cert) as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@outside.test>") == (250, "2.1.5")
    with cert_session(srv, False, tls_cert) as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<r@outside.test>") == (550, "5.7.1")
        assert c.cmd("NOOP") == (250, "2.0.0")  # no certificate: still a session


def test_mixed_recipients_only_the_allowed_ones_are_stored(srv):
    with srv.session("domains") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<a@local.test>") == (250, "2.1.5")
        assert c.cmd("RCPT TO:<b@outside.test>") == (550, "5.7.1")
        assert c.cmd("RCPT TO:<c@b.x.com>") == (250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(simple_body("mixed") + b".\r\n")
        r = c.read_reply()
    assert [x.addr for x in srv.message(r.queued_id).rcpts] == ["a@local.test", "c@b.x.com"]


def test_bare_postmaster_is_always_accepted(srv):
    with srv.session("domains") as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        assert c.cmd("RCPT TO:<x@outside.test>") == (550, "5.7.1")  # not a relay
        r = c.cmd("RCPT TO:<Postmaster>")
        assert r == (250, "2.1.5"), r


def test_postmaster_of_a_relay_domain(srv):
    allowed(srv, "domains", "127.0.0.1", "postmaster@local.test")


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
