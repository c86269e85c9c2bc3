"""STARTTLS (RFC 3207) with a self-signed certificate made at test time:
openssl s_client and swaks as real clients, Python's ssl on a raw socket for the
plaintext-injection attack (CVE-2011-0411)."""
import re
import smtplib
import socket
import ssl
import subprocess

import pytest

from smtpkit import HOSTNAME, simple_body, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    cert, key = tls_cert
    tls = f'TLS_Certificate = "{cert}"\nTLS_Key = "{key}"\nRelay_Hosts = ( "127.0.0.1" )'
    s = start_server(tmp_path_factory, "starttls", listens={
        "tls": ("127.0.0.1", tls),
        "tls_ignore": ("127.0.0.1", tls + '\nSTARTTLS_Injection_Policy = "ignore"'),
        "tls12": ("127.0.0.1", tls + '\nTLS_Protocols = "+ALL:-TLSv1.3"'),
        # SMTP_Extensions without "STARTTLS": not offered although a certificate is set
        "no_starttls": ("127.0.0.1", tls + '\nSMTP_Extensions = ( "XCLIENT" )'),
    })
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def caps(reply):
    return [l.split(" ", 1)[0] for l in reply.lines[1:]]


def tls_session(srv, name="tls"):
    c = srv.session(name)
    c.starttls()
    return c


def test_starttls_offered_only_with_a_certificate(srv):
    with srv.session("tls") as c:
        assert "STARTTLS" in caps(c.ehlo())
    with srv.session("main") as c:
        assert "STARTTLS" not in caps(c.ehlo())
        assert c.cmd("STARTTLS") == (502, "5.5.1")
    with srv.session("no_starttls") as c:
        assert "STARTTLS" not in caps(c.ehlo())
        assert c.cmd("STARTTLS") == (502, "5.5.1")


def test_starttls_with_argument_is_501(srv):
    with srv.session("tls") as c:
        assert c.cmd("STARTTLS now") == (501, "5.5.4")
        assert c.cmd("NOOP") == (250, "2.0.0")


def test_openssl_s_client_handshake(srv):
    host, port = srv.addr["tls"]
    res = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                          f"{host}:{port}", "-brief", "-crlf", "-ign_eof"],
                         input="EHLO after.tls\nNOOP\nQUIT\n", capture_output=True, text=True,
                         timeout=30)
    assert "CONNECTION ESTABLISHED" in res.stderr, res.stderr
    assert re.search(r"^Protocol version: TLSv1\.[23]$", res.stderr, re.M), res.stderr
    assert re.search(r"^Ciphersuite: \S+", res.stderr, re.M), res.stderr
    out = res.stdout.splitlines()
    assert out[0] == f"250-{HOSTNAME}", res.stdout
    assert not any("STARTTLS" in l for l in out)  # not offered again inside TLS
    assert "250 2.0.0 Ok" in out and out[-1] == "221 2.0.0 Bye", res.stdout


def test_message_over_tls_says_esmtps_and_cipher(srv):
    body = simple_body("over tls")
    with srv.session("tls") as c:
        c.starttls()
        version, cipher = c.sock.version(), c.sock.cipher()
        r = c.ehlo("tls.client.test")
        assert "STARTTLS" not in caps(r)
        assert c.cmd("STARTTLS") == (503, "5.5.1")
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], body)
        assert r.queued_id, r
        c.quit()
    m = srv.message(r.queued_id)
    assert m.body == body and m.helo == "tls.client.test"
    bits = cipher[2]
    clause = f"(using {version} with cipher {cipher[0]} ({bits}/{bits} bits))"
    assert m.prepend.decode().startswith(
        f"Received: from tls.client.test ([127.0.0.1])\r\n\t{clause}\r\n"
        f"\tby {HOSTNAME} (celer) with ESMTPS id {r.queued_id}\r\n"), m.prepend


def test_tls_protocols_option_limits_the_version(srv):
    with tls_session(srv, "tls12") as c:
        assert c.sock.version() == "TLSv1.2"
        r = c.ehlo()
        r = c.mail_txn("s@sender.test", ["r@rcpt.test"], simple_body("tls12"))
        c.quit()
    assert b"(using TLSv1.2 with cipher " in srv.message(r.queued_id).prepend


def test_session_starts_over_after_tls(srv):
    with tls_session(srv) as c:
        # RFC 3207: what was learnt before TLS (the EHLO) is forgotten
        assert c.cmd("MAIL FROM:<s@sender.test> BODY=8BITMIME") == (503, "5.5.1")
        c.ehlo("again.client.test")
        assert c.cmd("MAIL FROM:<s@sender.test> BODY=8BITMIME") == (250, "2.1.0")


def test_rejectlog_marks_tls_sessions(srv):
    with tls_session(srv) as c:
        c.ehlo("tls.client.test")
        assert c.cmd("FROB") == (500, "5.5.1")
        rej = srv.rejects_for(c)
        assert "tls=on" in rej[0]["CTXCONN"].split(","), rej
        assert "ehlo_domain=tls.client.test" in rej[0]["CTXCONN"]


def injection(srv, name):
    c = srv.session(name)
    # the attacker's MAIL travels in plaintext in the same segment as STARTTLS
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\n")
    r = c.read_reply()
    assert r == (220, "2.0.0"), r
    assert c.buf == b""  # no plaintext reply to the injected command
    c.tls_handshake()
    r = c.ehlo("victim.client.test")  # first reply inside TLS is the EHLO's, not a 250 2.1.0
    assert r.lines[0] == HOSTNAME, r
    # no "503 nested MAIL": the injected MAIL never ran
    body = simple_body("after injection")
    r = c.mail_txn("good@sender.test", ["r@rcpt.test"], body)
    assert r.queued_id, r
    c.quit()
    m = srv.message(r.queued_id)
    assert m.sender == "good@sender.test" and m.body == body
    assert b"evil" not in m.prepend
    return c


def test_starttls_injection_is_discarded_and_logged(srv):
    c = injection(srv, "tls")
    rej = srv.rejects_for(c)
    assert len(rej) == 1, rej
    assert (rej[0]["P"], rej[0]["E"]) == ("starttls", "554")
    assert rej[0]["reason"] == "554 5.7.0 Commands pipelined after STARTTLS discarded"


def test_starttls_injection_with_policy_ignore_is_discarded_silently(srv):
    c = injection(srv, "tls_ignore")
    assert not any(f'R="{c.remote_str}"' in l for l in srv.rejectlog())


def test_garbage_instead_of_handshake_ends_only_that_session(srv):
    with srv.session("tls") as c:
        assert c.cmd("STARTTLS") == (220, "2.0.0")
        c.send(b"EHLO this is not a ClientHello\r\n" * 4)
        assert c.wait_closed(5.0)
    # a client that vanishes in the middle of the handshake
    c = srv.session("tls")
    assert c.cmd("STARTTLS") == (220, "2.0.0")
    c.sock.send(b"\x16\x03\x01\x00\x05\x01")
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()


def test_smtplib_starttls_client(srv):
    host, port = srv.addr["tls"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(host, port, local_hostname="smtplib.tls.test", timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=ctx)
        assert code == 220
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.mail("s@sender.test")[0] == 250
        assert s.rcpt("r@rcpt.test")[0] == 250
        code, text = s.data(simple_body("smtplib tls"))
    assert code == 250, text
    msgid = re.match(r"2\.0\.0 Ok: queued as (\S+)$", text.decode()).group(1)
    msg = srv.message(msgid)
    assert b" with ESMTPS id " in msg.prepend and msg.helo == "smtplib.tls.test"


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
