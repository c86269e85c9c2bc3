"""Helpers for the SMTP reception tests (test_smtp_*.py).

- RawSmtp: a raw-socket SMTP client that sends exactly the bytes it is given
  and parses replies (multi-line, enhanced codes); it can bind its source
  address (127.0.0.x) to appear as a different peer.
- Server: one celerd with several Listen addresses, its logs, its spool (read
  with spoolfile.py) and a health check (a normal message still gets through).
- make_config(): a configuration with paniclog, mainlog and rejectlog.

Every address used is loopback; every port comes from conftest.free_port().
"""
import os
import pathlib
import re
import socket
import ssl
import subprocess
import textwrap
import time

import spoolfile
from conftest import CELERD, Celerd, free_port, wait_for

HOSTNAME = "mx.test.example"
REPLY_LINE = re.compile(rb"^(\d{3})(?:([ -])(.*))?$")  # "334" alone is legal (RFC 5321 4.2)
ENH = re.compile(r"^([245]\.\d{1,3}\.\d{1,3}) ")
QUEUED = re.compile(r"^2\.0\.0 Ok: queued as (\S+)$")
REJECT_LINE = re.compile(
    r'^(?P<ts>\d+): R="(?P<R>[^"]*)" L="(?P<L>[^"]*)" C="(?P<C>[^"]*)" PATH="(?P<PATH>[^"]*)" '
    r'PATH_GRP="(?P<PATH_GRP>[^"]*)" P="(?P<P>[^"]*)" E=(?P<E>\d+) M=(?P<M>\S+) '
    r'CTXCONN=\[(?P<CTXCONN>.*?)\] CTXMESS=\[(?P<CTXMESS>.*?)\] (?P<reason>.*)$')

# ---- replies ----


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines          # text after "NNN-" / "NNN ", one per line

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enh(self):
        """The enhanced status code of the first line, or None."""
        m = ENH.match(self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    @property
    def msg(self):
        """The first line's text without the enhanced code."""
        first = self.lines[0] if self.lines else ""
        m = ENH.match(first)
        return first[m.end():] if m else first

    @property
    def queued_id(self):
        m = QUEUED.match(self.lines[0]) if self.code == 250 and self.lines else None
        return m.group(1) if m else None

    def __eq__(self, other):
        if isinstance(other, tuple):
            return (self.code, self.enh) == other
        return NotImplemented

    def __repr__(self):
        return f"<{self.code} {self.text!r}>"


class Closed(Exception):
    """The server closed the connection before a complete reply."""


# ---- raw client ----


class RawSmtp:
    def __init__(self, host, port, source=None, timeout=5.0):
        self.timeout = timeout
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=src)
        self.local = self.sock.getsockname()
        self.buf = b""
        self.eof = False

    @property
    def local_port(self):
        return self.local[1]

    @property
    def remote_str(self):
        """How celerd names this client in its logs (R="ip:port")."""
        if ":" in self.local[0]:
            return f"[{self.local[0]}]:{self.local[1]}"
        return f"{self.local[0]}:{self.local[1]}"

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed(f"connection closed; unparsed {self.buf!r}")
        self.buf += chunk
        return chunk

    def recv_once(self, timeout=None):
        """One recv() call: whatever the server has sent (for pipelining checks)."""
        return self._fill(self.timeout if timeout is None else timeout)

    def _parse(self):
        """A complete reply at the head of buf, or None."""
        lines = []
        pos = 0
        while True:
            nl = self.buf.find(b"\r\n", pos)
            if nl < 0:
                return None
            line = self.buf[pos:nl]
            m = REPLY_LINE.match(line)
            if not m:
                raise AssertionError(f"malformed reply line {line!r}")
            lines.append((m.group(3) or b"").decode("utf-8", "replace"))
            pos = nl + 2
            if m.group(2) != b"-":
                code = int(m.group(1))
                self.buf = self.buf[pos:]
                return Reply(code, lines)

    def read_reply(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            r = self._parse()
            if r is not None:
                return r
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete reply; have {self.buf!r}")
            self._fill(left)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.read_reply(timeout)

    def greeting(self, timeout=None):
        return self.read_reply(timeout)

    def ehlo(self, name="client.test"):
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, r
        return r

    def wait_closed(self, timeout=3.0):
        """True when the server closes the connection within timeout (data before
        the EOF is kept in buf)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except Closed:
                return True
            except socket.timeout:
                return False
        return True

    def starttls(self, ctx=None):
        """STARTTLS, then the handshake on the same socket. Returns the 220."""
        r = self.cmd("STARTTLS")
        assert r.code == 220, r
        self.tls_handshake(ctx)
        return r

    def tls_handshake(self, ctx=None):
        if ctx is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=HOSTNAME)

    def mail_txn(self, sender, rcpts, body, mail_params="", rcpt_params=""):
        """MAIL, RCPT..., DATA, body (dot-stuffed here), final dot, one step at a
        time; asserts every step and returns the final reply."""
        r = self.cmd(f"MAIL FROM:<{sender}>{mail_params}")
        assert r.code == 250, r
        for rc in rcpts:
            r = self.cmd(f"RCPT TO:<{rc}>{rcpt_params}")
            assert r.code == 250, r
        r = self.cmd("DATA")
        assert r.code == 354, r
        self.send(dot_stuff(body) + b".\r\n")
        return self.read_reply()

    def quit(self):
        try:
            r = self.cmd("QUIT")
            assert r.code == 221, r
        finally:
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def dot_stuff(body):
    """Wire form of a CRLF body: lines starting with "." get another one."""
    if isinstance(body, str):
        body = body.encode()
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    lines = body.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def simple_body(subject="test", extra_headers="", text="Hello.\r\n"):
    return (f"From: <s@sender.test>\r\nTo: <r@rcpt.test>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@client.test>\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n{extra_headers}\r\n{text}").encode()


# ---- configuration ----


def make_config(listens, global_extra="", logger_extra="", listener_extra="", loops=2):
    """listens: list of (host, port, options text). Global Relay_Hosts is not set."""
    blocks = []
    for host, port, opts in listens:
        if ":" in host:
            host = f"[{host}]"
        inner = textwrap.indent(textwrap.dedent(opts), "    ")
        blocks.append(f'  Listen "{host}:{port}" {{\n{inner}\n  }}')
    return (textwrap.dedent(f"""\
        Spoolbase = "spool"
        Pidfile = "run/celerd.pid"
        Hostname = "{HOSTNAME}"
        # these tests look at what reception stored: the queue keeps it, untouched
        Suspend_Delivery = true
        EventLoop "pool" {{ Concurrency = {loops} }}
        ec_logger "ec_logger1" {{
          paniclog = "log/paniclog.ec"
          mainlog = "log/mainlog.ec"
          rejectlog = "log/rejectlog.ec"
        """) + textwrap.indent(textwrap.dedent(logger_extra), "  ") + "}\n"
            + textwrap.dedent(global_extra) + "\nESMTP_Listener {\n"
            + textwrap.indent(textwrap.dedent(listener_extra), "  ")
            + "\n".join(blocks) + "\n}\n")


class CelerdAsan(Celerd):
    """conftest.Celerd with extra ASAN_OPTIONS (e.g. no quarantine, so that a heap
    overflow into a neighbouring live block is reported when that block is freed)."""

    def __init__(self, workdir, config_text, asan_extra=""):
        super().__init__(workdir, config_text)
        self.asan_extra = asan_extra

    def start(self, wait_line="started pid="):
        if not self.asan_extra:
            return super().start(wait_line)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:" + self.asan_extra)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([str(CELERD), "-c", str(self.conf), "-d"], cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr, env=env)
        line = f"started pid={self.proc.pid} "
        wait_for(lambda: line in self.log_text() or self.proc.poll() is not None, timeout=20,
                 what=f"'{line}' in celerd's log")
        assert self.proc.poll() is None, f"celerd exited early:\n{self.stderr()}"
        return self


def free_port6(host="::1"):
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback():
    try:
        free_port6()
        return True
    except OSError:
        return False


MAIN_OPTS = 'Relay_Hosts = ( "127.0.0.1" )'


class Server:
    """A celerd with named listen addresses. listens: {name: (host, options)};
    a "main" listen relaying for 127.0.0.1 is added unless given."""

    def __init__(self, workdir, listens=None, global_extra="", logger_extra="",
                 listener_extra="", loops=2, asan_extra=""):
        listens = dict(listens or {})
        listens.setdefault("main", ("127.0.0.1", MAIN_OPTS))
        self.addr = {}
        entries = []
        for name, (host, opts) in listens.items():
            port = free_port6(host) if ":" in host else free_port(host)
            self.addr[name] = (host, port)
            entries.append((host, port, opts))
        workdir = pathlib.Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.text = make_config(entries, global_extra, logger_extra, listener_extra, loops)
        self.d = CelerdAsan(workdir, self.text, asan_extra)
        self.dir = workdir
        self.spool = workdir / "spool"
        self.stopped = False
        self.exit_status = None

    def start(self):
        self.d.start()  # every Listen address is bound before celerd logs "started"
        return self

    @property
    def pid(self):
        return self.d.proc.pid

    def alive(self):
        return self.d.proc.poll() is None

    # connections

    def connect(self, name="main", source=None, timeout=5.0):
        host, port = self.addr[name]
        skip = len(self.rejectlog())  # lines before this session (ephemeral ports get reused)
        c = RawSmtp(host, port, source=source, timeout=timeout)
        c.rejectlog_from = skip
        return c

    def session(self, name="main", source=None, helo="client.test", timeout=5.0):
        """Connected, greeted (220) and EHLOed."""
        c = self.connect(name, source, timeout)
        g = c.greeting()
        assert g.code == 220, g
        c.ehlo(helo)
        return c

    # logs

    def _lines(self, name):
        p = self.dir / "log" / name
        return p.read_text(errors="replace").splitlines() if p.exists() else []

    def mainlog(self):
        return self._lines("mainlog.ec")

    def rejectlog(self):
        return self._lines("rejectlog.ec")

    def paniclog(self):
        return self._lines("paniclog.ec")

    def rejects_for(self, client, n=1, timeout=5.0):
        """Parsed rejectlog lines of one client's session (R="ip:port"); waits for n."""
        want = client.remote_str if isinstance(client, RawSmtp) else client
        skip = getattr(client, "rejectlog_from", 0)

        def get():
            out = []
            for line in self.rejectlog()[skip:]:
                m = REJECT_LINE.match(line)
                if m and m.group("R") == want:
                    out.append(m.groupdict())
            return out if len(out) >= n else None
        return wait_for(get, timeout=timeout, what=f"{n} rejectlog line(s) for {want}")

    def rejects_by_connid(self, connid, n=1, timeout=5.0):
        """Parsed rejectlog lines of the session with that C= connection id; waits for n."""
        def get():
            out = [m.groupdict() for m in map(REJECT_LINE.match, self.rejectlog())
                   if m and m.group("C") == connid]
            return out if len(out) >= n else None
        return wait_for(get, timeout=timeout, what=f"{n} rejectlog line(s) for C={connid}")

    def receptions(self, msgid, n=1, timeout=5.0):
        """mainlog R lines of a message, split on '@'; waits for n."""
        def get():
            out = [l.split("@") for l in self.mainlog() if l.split("@")[1:2] == [msgid]
                   and "@R@" in l]
            return out if len(out) >= n else None
        return wait_for(get, timeout=timeout, what=f"{n} mainlog R line(s) for {msgid}")

    # spool

    def message(self, msgid):
        return spoolfile.read_id(self.spool, msgid)

    def messages(self):
        return spoolfile.list_messages(self.spool)

    # health

    def send_ok(self, subject="health check"):
        """A normal message through the main listen: 250 queued, stored exactly."""
        body = simple_body(subject)
        with self.session() as c:
            r = c.mail_txn("s@sender.test", ["r@rcpt.test"], body)
            assert r.code == 250 and r.queued_id, r
            c.quit()
        m = self.message(r.queued_id)
        assert m.body == body
        assert m.sender == "s@sender.test" and [x.addr for x in m.rcpts] == ["r@rcpt.test"]
        return r.queued_id

    def assert_healthy(self):
        if self.stopped:
            return
        assert self.alive(), f"celerd died:\n{self.d.stderr()[-4000:]}"
        self.send_ok()

    def stop(self):
        """SIGTERM by PID; returns the exit status (0 = clean, sanitizers included)."""
        self.stopped = True
        self.exit_status = self.d.stop()
        return self.exit_status

    def assert_clean_stop(self):
        status = self.stop()
        err = self.d.stderr()
        assert status == 0, f"celerd exit status {status}:\n{err[-6000:]}"
        assert "AddressSanitizer" not in err and "LeakSanitizer" not in err, err[-6000:]
        assert "runtime error" not in err, err[-6000:]

    def kill(self):
        self.d.kill()


def start_server(tmp_path_factory, name, **kw):
    s = Server(tmp_path_factory.mktemp(name), **kw)
    s.start()
    return s


# ---- passwords ----


def sha512_crypt(password):
    return subprocess.run(["openssl", "passwd", "-6", password], check=True,
                          capture_output=True, text=True).stdout.strip()
