"""Helpers for the delivery tests (test_delivery_*.py).

- Rig: one celerd configured to deliver through the test NSD (Resolv_Conf) to
  the MXs of an MxFarm (Remote_SMTP_Port = the farm's port), with short retry
  intervals; it submits mail over SMTP, reads the mainlog (Momentum's D/T/P
  records, parsed into Rec), lists the spool, restarts and reloads celerd.
- Submitter: a lock-step SMTP client on a raw socket that sends exactly the
  bytes given (dot-stuffing only at CRLF line starts, as the server undoes it)
  and returns the queue id from "250 2.0.0 Ok: queued as ID".
- tls_pki: a session fixture with a test CA, a second unrelated CA and server
  certificates made with openssl.

A test module gets every fixture (nsd_server, mx_farm, rig_factory, tls_pki) with
`from delivery_kit import *`.

Every address is loopback and every port comes from free_port() or the farm.
"""
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import textwrap
import time

import pytest

import spoolfile
from conftest import Celerd, free_port, wait_for
from mx import mx_farm  # noqa: F401 (re-exported fixture)
from nsd import nsd_server  # noqa: F401 (re-exported fixture)

HOSTNAME = "celer.test"
QUEUED = re.compile(rb"^250 2\.0\.0 Ok: queued as (\S+)")

# Short intervals so that retry scenarios take seconds (docs/delivery.md).
FAST = {
    "Retry_Interval": "1",
    "Max_Retry_Interval": "4",
    "Delayed_Queue_Scan_Interval": "1",
    "Host_Failure_Retry": "1",
    "Connect_Timeout": "2",
    "EHLO_Timeout": "5",
    "MailFrom_Timeout": "5",
    "RcptTo_Timeout": "5",
    "Body_Timeout": "10",
    "RSET_Timeout": "5",
    "Idle_Timeout": "2",
}


# ---- mainlog ----


class Rec:
    """A mainlog delivery record (D, T or P), split as src/log/mainlog.h lays it out."""

    def __init__(self, line):
        self.line = line
        f = line.split("@", 13)
        self.ts = int(f[0])
        self.msgid, self.batchid, self.connid, self.type = f[1], f[2], f[3], f[4]
        self.domain = f[5]
        self.size = int(f[6])
        self.bgroup, self.binding = f[7], f[8]
        if self.type in ("D", "X"):
            g = line.split("@", 11)
            self.retries = int(g[9])
            self.secs = float(g[10])
            self.remote_ip = g[11]
            self.stage = None
            self.response = None
        else:
            self.stage = int(f[9])
            self.retries = int(f[10])
            self.secs = float(f[11])
            self.remote_ip = f[12]
            self.response = f[13]

    def __repr__(self):
        return f"<Rec {self.line}>"


def parse_records(lines):
    out = []
    for line in lines:
        parts = line.split("@")
        if len(parts) >= 12 and parts[4] in ("D", "T", "P"):
            out.append(Rec(line))
    return out


# ---- SMTP submission ----


class SmtpError(Exception):
    def __init__(self, stage, code, text):
        super().__init__(f"{stage}: {code} {text!r}")
        self.stage, self.code, self.text = stage, code, text


def stuff(data):
    """Wire form of message bytes: a "." at the start of a CRLF-delimited line is doubled,
    then the final dot (a CRLF is added first when the data does not end with one)."""
    out = re.sub(rb"(^|\r\n)\.", rb"\1..", data)
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out + b".\r\n"


class Submitter:
    """A lock-step SMTP session to celerd's listener."""

    def __init__(self, port, host="127.0.0.1", timeout=15.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        code, text = self.reply()
        assert code == 220, text
        self.cmd("EHLO client.test", 250)

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise SmtpError("eof", 0, self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines)

    def cmd(self, line, expect=None):
        self.sock.sendall(line.encode() + b"\r\n")
        code, text = self.reply()
        if expect is not None and code != expect:
            raise SmtpError(line, code, text)
        return code, text

    def send(self, sender, rcpts, data, mail_params="", rcpt_params="", bdat=False):
        """One transaction; returns the queue id. Raises SmtpError on any refusal.
        bdat=True sends the data in one "BDAT n LAST" instead of DATA (raw octets)."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        self.cmd(f"MAIL FROM:<{sender}>{mail_params}", 250)
        for r in rcpts:
            self.cmd(f"RCPT TO:<{r}>{rcpt_params}", 250)
        if bdat:
            self.sock.sendall(f"BDAT {len(data)} LAST\r\n".encode() + data)
        else:
            self.cmd("DATA", 354)
            self.sock.sendall(stuff(data))
        code, text = self.reply()
        if code != 250:
            raise SmtpError("data", code, text)
        m = QUEUED.match(text)
        assert m, text
        return m.group(1).decode()

    def close(self):
        try:
            self.cmd("QUIT")
        except (OSError, SmtpError):
            pass
        self.sock.close()


def message(subject, body="Hello.\r\n", sender="s@sender.example.test", to="r@example.test",
            extra_headers=""):
    """A small message with Message-ID and Date (so celerd adds only Received)."""
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@client.test>\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n{extra_headers}\r\n{body}").encode()


def split_received(data):
    """(the Received header celerd prepended, the rest) of delivered bytes."""
    assert data.startswith(b"Received: "), data[:200]
    pos = 0
    while True:
        eol = data.index(b"\r\n", pos)
        pos = eol + 2
        if data[pos:pos + 1] not in (b" ", b"\t"):
            return data[:pos], data[pos:]


# ---- celerd ----


def options_text(opts):
    return "".join(f"{k} = {v}\n" for k, v in opts.items())


class Rig:
    """One celerd delivering through the test NSD to an MxFarm."""

    def __init__(self, workdir, nsd, farm, extra="", options=None, loops=2,
                 resolv_conf=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.nsd = nsd
        self.farm = farm
        self.port = free_port()
        self.loops = loops
        opts = dict(FAST)
        opts.update(options or {})
        self.options = opts
        self.extra = extra
        self.resolv_conf = resolv_conf or (nsd.resolv_conf if nsd else None)
        self.d = None
        self.runs = 0
        self.exit_statuses = []

    def config_text(self):
        port_line = f"Remote_SMTP_Port = {self.farm.port}\n" if self.farm else ""
        resolv = f'Resolv_Conf = "{self.resolv_conf}"\n' if self.resolv_conf else ""
        return (textwrap.dedent(f"""\
            Spoolbase = "spool"
            Pidfile = "run/celerd.pid"
            Hostname = "{HOSTNAME}"
            EventLoop "pool" {{ Concurrency = {self.loops} }}
            ec_logger "ec_logger1" {{
              paniclog = "log/paniclog.ec"
              mainlog = "log/mainlog.ec"
              rejectlog = "log/rejectlog.ec"
            }}
            ESMTP_Listener {{
              Listen "127.0.0.1:{self.port}" {{
                Relay_Hosts = ( "127.0.0.1" )
              }}
            }}
            """) + resolv + port_line + options_text(self.options) + textwrap.dedent(self.extra))

    # -- lifecycle --

    def start(self):
        if self.d is not None:
            old = self.d.stderr_path
            if old.exists():
                old.rename(self.dir / f"celerd.stderr.{self.runs}")
        self.d = Celerd(self.dir, self.config_text())
        self.d.start()
        self.runs += 1
        return self

    def stop(self, sig=signal.SIGTERM):
        """Stops celerd; returns its exit status (0 = clean, LeakSanitizer included)."""
        st = self.d.stop(sig)
        self.exit_statuses.append(st)
        return st

    def assert_clean_stop(self):
        st = self.stop()
        assert st == 0, f"celerd exit status {st}:\n{self.d.stderr()[-4000:]}"
        err = self.d.stderr()
        assert "ERROR: AddressSanitizer" not in err and "LeakSanitizer" not in err, err[-4000:]
        assert "runtime error" not in err, err[-4000:]

    def kill(self):
        if self.d is not None:
            self.d.kill()

    def reload(self, extra=None, options=None):
        """Rewrites the configuration and sends SIGHUP; waits for config_reloaded."""
        if extra is not None:
            self.extra = extra
        if options is not None:
            self.options = options
        before = self.paniclog().count("config_reloaded")
        self.d.conf.write_text(self.config_text())
        self.d.send_signal(signal.SIGHUP)
        wait_for(lambda: self.paniclog().count("config_reloaded") > before, timeout=10,
                 what="config_reloaded")

    @property
    def pid(self):
        return self.d.proc.pid

    # -- mail --

    def submitter(self):
        return Submitter(self.port)

    def send(self, sender, rcpts, data, **kw):
        s = self.submitter()
        try:
            return s.send(sender, rcpts, data, **kw)
        finally:
            s.close()

    # -- logs --

    def _read(self, name):
        p = self.dir / "log" / name
        return p.read_text(errors="replace") if p.exists() else ""

    def paniclog(self):
        return self._read("paniclog.ec")

    def mainlog_lines(self):
        return self._read("mainlog.ec").splitlines()

    def records(self, msgid=None, type=None):
        return [r for r in parse_records(self.mainlog_lines())
                if (msgid is None or r.msgid == msgid) and (type is None or r.type in type)]

    def wait_records(self, msgid, type, n=1, timeout=20.0):
        def get():
            recs = self.records(msgid, type)
            return recs if len(recs) >= n else None
        return wait_for(get, timeout=timeout, what=f"{n} {type} record(s) for {msgid}")

    # -- spool --

    def spool_ids(self):
        return spoolfile.list_messages(self.dir / "spool")

    def spool_message(self, msgid):
        return spoolfile.read_id(self.dir / "spool", msgid)

    def wait_spool_empty(self, timeout=10.0):
        wait_for(lambda: not self.spool_ids(), timeout=timeout, what="an empty spool")

    # -- the end of every test --

    def check_still_delivers(self, mx, domain="deliv.example.test"):
        """A normal message still gets through (to mx, an Mx of the farm)."""
        before = len(mx.received())
        rcpt = f"health-{time.monotonic_ns()}@{domain}"
        msgid = self.send("s@sender.example.test", [rcpt], message("health check", to=rcpt))
        wait_for(lambda: mx.received_by(rcpt), timeout=20, what=f"health message at {mx.name}")
        self.wait_records(msgid, "D")
        assert len(mx.received()) == before + 1
        return msgid


def deliver_one(rig, mx, rcpt, data, sender="s@sender.example.test", **send_kw):
    """Sends one message to rcpt and waits until mx has it and celerd has logged its D
    record: (queue id, the Received at mx, the D record)."""
    msgid = rig.send(sender, [rcpt], data, **send_kw)
    (m,) = wait_for(lambda: mx.received_by(rcpt), timeout=30,
                    what=f"the message for {rcpt} at {mx.name}")
    (d,) = rig.wait_records(msgid, "D")
    return msgid, m, d


def finish(rig, mx, domain="deliv.example.test"):
    """Every test ends here: a normal message is delivered, then celerd stops cleanly."""
    rig.check_still_delivers(mx, domain)
    rig.assert_clean_stop()


@pytest.fixture
def rig_factory(tmp_path, nsd_server, mx_farm):
    made = []

    def make(extra="", options=None, start=True, name="celer", **kw):
        r = Rig(tmp_path / f"{name}{len(made)}", nsd_server, mx_farm, extra=extra,
                options=options, **kw)
        made.append(r)
        if start:
            r.start()
        return r

    yield make
    for r in made:
        r.kill()


# ---- TLS material ----


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    """ca.pem (the test CA), other-ca.pem (an unrelated CA), and server certificates:
    good (CN/SAN tls-mx.example.test, signed by ca), wrong-name (SAN
    elsewhere.example.org, signed by ca), other (tls-mx.example.test, signed by other-ca)."""

    def __init__(self, d):
        self.dir = pathlib.Path(d)
        self.ca = self.dir / "ca.pem"
        self.other_ca = self.dir / "other-ca.pem"

    def make_ca(self, name, cn):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)

    def make_server(self, name, dns_name, ca):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN={dns_name}", cwd=self.dir)
        (self.dir / f"{name}.ext").write_text(
            f"subjectAltName=DNS:{dns_name}\nbasicConstraints=CA:FALSE\n"
            "extendedKeyUsage=serverAuth\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                 f"{name}.ext", cwd=self.dir)

    def context(self, name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.dir / f"{name}.pem", self.dir / f"{name}.key")
        return ctx


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.make_ca("ca", "celer test CA")
    p.make_ca("other-ca", "unrelated CA")
    p.make_server("good", "tls-mx.example.test", "ca")
    p.make_server("wrong-name", "elsewhere.example.org", "ca")
    p.make_server("other", "tls-mx.example.test", "other-ca")
    return p


# What `from delivery_kit import *` gives a test module: the pytest fixtures.
__all__ = ["nsd_server", "mx_farm", "rig_factory", "tls_pki"]
