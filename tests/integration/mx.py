"""Programmable remote MXs for the delivery tests (aiosmtpd on loopback).

An MxFarm runs one asyncio loop in a thread and hosts any number of MXs, all
on the same TCP port and each on its own loopback address (127.0.0.11,
127.0.0.12, ... as named in nsd.EXAMPLE_TEST_ZONE), so celerd reaches all of
them with one Remote_SMTP_Port. Each Mx is an aiosmtpd SMTP (or LMTP) server
whose behaviour can be changed while it runs:

    farm = MxFarm()                       # picks a port free on every address
    mx1 = farm.add("mx1", nsd.MX1)
    mx1.rcpt_reply = lambda addr: "451 4.7.1 try later"    # or a dict addr -> reply
    mx1.data_delay = 0.3                  # a slow reply to the final dot
    mx1.rcpt_reply = None                 # accept again
    mx1.rcpt_reply = {addr: mx.DROP}      # hang up instead of answering
    mx1.wait_messages(3)                  # list of Received
    farm.close()

What an Mx observes is recorded: every session (peer, EHLO name, whether TLS
was started, the cipher), the largest number of simultaneous sessions, every
RCPT with the reply it got (and when), and every accepted message with its
envelope, its exact bytes (after dot-unstuffing, as aiosmtpd stores them),
the MAIL and RCPT parameters and whether it came over TLS. MXs offer PIPELINING
unless made with pipelining=False (then celerd speaks in lock-step).

Options of farm.add(): tls_context= offers STARTTLS with that ssl.SSLContext
(starttls_delay delays its 220); data_size_limit= is the SIZE offered;
smtputf8=True offers SMTPUTF8; greeting="421 ..." answers every connection with
that greeting and closes (a plain asyncio protocol); broken_tls=True offers
STARTTLS, says 220 and then sends garbage instead of a TLS handshake;
lmtp=True speaks LMTP (aiosmtpd.lmtp.LMTP), one reply per recipient after the
data (data_reply may then be a dict recipient -> reply). chunking=True offers
CHUNKING and BINARYMIME (RFC 3030, which aiosmtpd lacks: BDAT is added here) and
records each message's chunk sizes in Received.chunks; bdat_reply (a rule keyed
by the chunk's index in its message, from 0) refuses chunks.

The `mx_farm` fixture gives a fresh farm per test and closes it afterwards.
"""
import asyncio
import re
import socket
import threading
import time

import pytest
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, syntax

from conftest import wait_for

ALL_ADDRESSES = ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.19", "127.0.0.20",
                 "127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25",
                 "127.0.0.26", "127.0.0.27"]


DROP = "DROP"   # as a reply: close the connection instead of answering


class Received:
    """One message accepted by an Mx."""

    def __init__(self, mx, session, envelope, tls):
        self.mx = mx.name
        self.session = session            # SessionRecord
        self.mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
        self.mail_options = list(envelope.mail_options)
        self.rcpt_tos = list(envelope.rcpt_tos)
        self.rcpt_options = list(envelope.rcpt_options)
        self.data = bytes(envelope.original_content)
        self.chunks = getattr(envelope, "bdat_chunks", None)   # BDAT chunk sizes, None: DATA
        self.tls = tls
        self.time = time.monotonic()
        self.wall = time.time()

    def __repr__(self):
        return f"<Received at {self.mx} from={self.mail_from} to={self.rcpt_tos} {len(self.data)}B>"


class SessionRecord:
    def __init__(self, sid, peer):
        self.id = sid
        self.peer = peer
        self.start = time.monotonic()
        self.end = None
        self.helo = None
        self.tls = False
        self.cipher = None
        self.messages = 0


class RcptRecord:
    def __init__(self, session, addr, reply):
        self.session = session
        self.addr = addr
        self.reply = reply
        self.time = time.monotonic()
        self.wall = time.time()

    def __repr__(self):
        return f"<RCPT {self.addr} -> {self.reply!r} @{self.wall:.2f}>"


class _Handler:
    def __init__(self, mx):
        self.mx = mx

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        server._rec.helo = hostname
        if self.mx.pipelining:
            # aiosmtpd reads commands one line at a time, so pipelined input just works
            responses.insert(len(responses) - 1, "250-PIPELINING")
        if not self.mx.eightbitmime:
            responses = [r for r in responses if r[4:] != "8BITMIME"]
        if self.mx.chunking:
            responses[-1:-1] = ["250-CHUNKING", "250-BINARYMIME"]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self.mx._reply_for(self.mx.mail_reply, address)
        if reply:
            return reply
        envelope.mail_from = address   # "<>" for the null sender (Received.mail_from: "")
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.mx._reply_for(self.mx.rcpt_reply, address) or "250 2.1.5 OK"
        self.mx._note_rcpt(RcptRecord(server._rec, address, reply))
        if reply == DROP:
            server.transport.close()
            return "421 4.4.2 (never sent: the connection is gone)"
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return reply

    async def handle_DATA(self, server, session, envelope):
        mx = self.mx
        if mx.data_delay:
            await asyncio.sleep(mx.data_delay)
        tls = session.ssl is not None
        if mx.lmtp:
            replies = [mx._reply_for(mx.data_reply, r) or "250 2.0.0 OK" for r in envelope.rcpt_tos]
            accepted = [r for r, rep in zip(envelope.rcpt_tos, replies) if rep.startswith("2")]
            if accepted:
                rec = Received(mx, server._rec, envelope, tls)
                rec.rcpt_tos = accepted
                mx._note_message(rec)
            return "\r\n".join(replies)
        reply = mx._reply_for(mx.data_reply, envelope) or "250 2.0.0 OK queued"
        if reply.startswith("2"):
            mx._note_message(Received(mx, server._rec, envelope, tls))
        return reply


class _SessionMixin:
    """Counts sessions and simultaneous sessions; keeps a SessionRecord per connection."""

    line_length_limit = 1 << 20     # long lines are the sender's business, not ours

    def _mx_init(self, mx):
        self._mx = mx
        self._rec = None

    def connection_made(self, transport):
        first = self._rec is None
        super().connection_made(transport)
        if first:
            self._rec = self._mx._open(self.session.peer)
        elif self.session.ssl is not None:
            self._rec.tls = True
            self._rec.cipher = self.session.ssl.get("cipher")

    def connection_lost(self, exc):
        if self._rec is not None and self._rec.end is None:
            self._mx._close(self._rec)
        super().connection_lost(exc)


class _ChunkingMixin:
    """BDAT, CHUNKING and BINARYMIME (RFC 3030) for an aiosmtpd SMTP or LMTP server."""

    def _bdat_reset(self):
        self._chunks = []
        self._bdat_data = bytearray()
        self._bdat_failed = False

    async def smtp_MAIL(self, arg):
        binary = False
        if self._mx.chunking and arg and re.search(r"\sBODY=BINARYMIME\b", arg, re.I):
            arg = re.sub(r"\sBODY=BINARYMIME\b", "", arg, flags=re.I)   # aiosmtpd refuses it
            binary = True
        self._bdat_reset()
        await super().smtp_MAIL(arg)
        if binary and self.envelope.mail_from:
            self.envelope.mail_options.append("BODY=BINARYMIME")

    async def smtp_RSET(self, arg):
        self._bdat_reset()
        await super().smtp_RSET(arg)

    async def smtp_BDAT(self, arg):
        m = re.fullmatch(r"(\d+)( +LAST)?", (arg or "").strip(), re.I)
        if not self._mx.chunking:
            return await self.push("500 5.5.1 Command not recognized")
        if m is None:
            return await self.push("501 5.5.4 Syntax: BDAT size [LAST]")
        n, last = int(m.group(1)), m.group(2) is not None
        data = await self._reader.readexactly(n) if n else b""
        if not self.envelope.rcpt_tos:
            return await self.push("503 5.5.1 Error: need RCPT command")
        index = len(self._chunks)
        self._chunks.append(n)
        self._bdat_data += data
        reply = self._mx._reply_for(self._mx.bdat_reply, index)
        if reply == DROP:
            self.transport.close()
            return
        if reply and not reply.startswith("2"):
            self._bdat_failed = True
        elif self._bdat_failed:
            reply = "503 5.5.1 Error: an earlier chunk was refused"
        if self._bdat_failed or not last:
            if last:   # the transaction is over, refused
                self._bdat_reset()
                self._set_post_data_state()
            return await self.push(reply or f"250 2.0.0 {n} octets received")
        self.envelope.original_content = bytes(self._bdat_data)
        self.envelope.content = self.envelope.original_content
        self.envelope.bdat_chunks = list(self._chunks)
        status = await self._call_handler_hook("DATA")
        self._bdat_reset()
        self._set_post_data_state()
        await self.push(status)

class _MxSMTP(_ChunkingMixin, _SessionMixin, SMTP):
    def __init__(self, mx, **kw):
        super().__init__(_Handler(mx), **kw)
        self._mx_init(mx)
        self._bdat_reset()

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg):
        if self._mx.starttls_delay:
            await asyncio.sleep(self._mx.starttls_delay)
        return await super().smtp_STARTTLS(arg)


class _MxLMTP(_ChunkingMixin, _SessionMixin, LMTP):
    def __init__(self, mx, **kw):
        super().__init__(_Handler(mx), **kw)
        self._mx_init(mx)
        self._bdat_reset()


class _BrokenTlsSMTP(_MxSMTP):
    """Offers STARTTLS, accepts it, then answers the ClientHello with garbage."""

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg):
        self._mx.broken_tls_attempts += 1
        await self.push("220 2.0.0 Ready to start TLS")
        self.transport.write(b"this is not a TLS server hello\r\n")
        await asyncio.sleep(0.05)
        self.transport.close()


class _GreetingOnly(asyncio.Protocol):
    """Answers with a fixed (4xx/5xx) greeting and hangs up."""

    def __init__(self, mx):
        self.mx = mx
        self.rec = None

    def connection_made(self, transport):
        self.rec = self.mx._open(transport.get_extra_info("peername"))
        transport.write((self.mx.greeting + "\r\n").encode())
        transport.close()

    def connection_lost(self, exc):
        if self.rec.end is None:
            self.mx._close(self.rec)


class Mx:
    def __init__(self, farm, name, host, lmtp=False, tls_context=None, broken_tls=False,
                 greeting=None, hostname=None, data_size_limit=32 << 20, smtputf8=False,
                 pipelining=True, eightbitmime=True, chunking=False):
        self.farm = farm
        self.name = name
        self.host = host
        self.port = farm.port
        self.lmtp = lmtp
        self.tls_context = tls_context
        self.broken_tls = broken_tls
        self.greeting = greeting
        self.hostname = hostname or f"{name}.example.test"
        self.data_size_limit = data_size_limit   # advertised as SIZE
        self.smtputf8 = smtputf8
        self.pipelining = pipelining             # offer PIPELINING in the EHLO reply
        self.eightbitmime = eightbitmime         # offer 8BITMIME in the EHLO reply
        self.chunking = chunking                 # offer CHUNKING and BINARYMIME, take BDAT
        # behaviour, changeable at any time: None, a reply string, a dict key -> reply,
        # or a callable(key) -> reply or None (None: the default 2xx)
        self.mail_reply = None
        self.rcpt_reply = None
        self.data_reply = None
        self.bdat_reply = None         # keyed by the chunk's index in its message
        self.data_delay = 0.0
        self.starttls_delay = 0.0      # before the 220 to STARTTLS
        # observations
        self.lock = threading.Lock()
        self.sessions = []
        self.rcpts = []
        self.messages = []
        self.current = 0
        self.max_concurrent = 0
        self.broken_tls_attempts = 0
        self._server = None

    # -- behaviour helpers --

    @staticmethod
    def _reply_for(rule, key):
        if rule is None:
            return None
        if isinstance(rule, str):
            return rule
        if isinstance(rule, dict):
            return rule.get(key)
        return rule(key)

    # -- observations (called on the farm's thread) --

    def _open(self, peer):
        with self.lock:
            rec = SessionRecord(len(self.sessions) + 1, peer)
            self.sessions.append(rec)
            self.current += 1
            self.max_concurrent = max(self.max_concurrent, self.current)
        self.farm._count(+1)
        return rec

    def _close(self, rec):
        with self.lock:
            rec.end = time.monotonic()
            self.current -= 1
        self.farm._count(-1)

    def _note_rcpt(self, r):
        with self.lock:
            self.rcpts.append(r)

    def _note_message(self, m):
        with self.lock:
            m.session.messages += 1
            self.messages.append(m)

    # -- for the tests --

    def received(self):
        with self.lock:
            return list(self.messages)

    def received_by(self, rcpt):
        """Messages accepted for one recipient address."""
        return [m for m in self.received() if rcpt in m.rcpt_tos]

    def rcpt_attempts(self, addr=None):
        with self.lock:
            return [r for r in self.rcpts if addr is None or r.addr == addr]

    def session_count(self):
        with self.lock:
            return len(self.sessions)

    def wait_messages(self, n, timeout=20.0):
        return wait_for(lambda: self.received() if len(self.received()) >= n else None,
                        timeout=timeout, what=f"{n} message(s) at {self.name}")

    def wait_rcpt_attempts(self, n, addr=None, timeout=20.0):
        return wait_for(lambda: (lambda a: a if len(a) >= n else None)(self.rcpt_attempts(addr)),
                        timeout=timeout, what=f"{n} RCPT(s) for {addr} at {self.name}")

    def wait_idle(self, timeout=10.0):
        """Waits until no session is open."""
        wait_for(lambda: self.current == 0, timeout=timeout, what=f"{self.name} idle")

    # -- server --

    def _factory(self):
        if self.greeting:
            return _GreetingOnly(self)
        kw = dict(hostname=self.hostname, loop=self.farm.loop, tls_context=self.tls_context,
                  timeout=60, data_size_limit=self.data_size_limit,
                  enable_SMTPUTF8=self.smtputf8)
        if self.lmtp:
            return _MxLMTP(self, **kw)
        if self.broken_tls:
            return _BrokenTlsSMTP(self, **kw)
        return _MxSMTP(self, **kw)

    async def _start(self):
        self._server = await self.farm.loop.create_server(self._factory, host=self.host,
                                                          port=self.port, reuse_address=True)

    async def _stop(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class MxFarm:
    def __init__(self, addresses=ALL_ADDRESSES):
        self.port = self._pick_port(addresses)
        self.loop = asyncio.new_event_loop()
        self.mxs = {}
        self.lock = threading.Lock()
        self.current = 0            # sessions open now, over every Mx of the farm
        self.max_concurrent = 0
        self._thread = threading.Thread(target=self._run, name="mx-farm", daemon=True)
        self._thread.start()

    @staticmethod
    def _pick_port(addresses):
        for _ in range(50):
            with socket.socket() as s:
                s.bind((addresses[0], 0))
                port = s.getsockname()[1]
            ok = True
            for a in addresses:
                with socket.socket() as s:
                    try:
                        s.bind((a, port))
                    except OSError:
                        ok = False
                        break
            if ok:
                return port
        raise RuntimeError("no port free on every MX address")

    def _count(self, delta):
        with self.lock:
            self.current += delta
            self.max_concurrent = max(self.max_concurrent, self.current)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add(self, name, host, **kw):
        mx = Mx(self, name, host, **kw)
        self._call(mx._start())
        self.mxs[name] = mx
        return mx

    def remove(self, name):
        mx = self.mxs.pop(name)
        self._call(mx._stop())

    def close(self):
        for name in list(self.mxs):
            self.remove(name)

        async def _drain():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self._call(_drain())
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def mx_farm():
    farm = MxFarm()
    yield farm
    farm.close()
