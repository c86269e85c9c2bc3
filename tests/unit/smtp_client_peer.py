#!/usr/bin/python3
"""Remote MXs for test_smtp_client, built on aiosmtpd.

Runs one asyncio loop with several servers on 127.0.0.1, each given as
--server NAME:PORT:OPTIONS, OPTIONS a comma-separated set of:
  pipelining  offer PIPELINING (aiosmtpd handles pipelined commands anyway)
  dsn         offer DSN and accept RET/ENVID/NOTIFY/ORCPT (aiosmtpd itself
              knows no DSN: the parameters are taken off before it parses)
  utf8        offer SMTPUTF8
  tls         offer STARTTLS with --cert/--key
  tls13       with tls: accept TLS 1.3 only
  small       SIZE 1000
  lmtp        LMTP (LHLO; one reply per recipient after the data)

Senders whose local part starts with mailreject get 550; recipients are
answered by local part: defer* 450, reject* 550, anything else 250. In LMTP mode the per-recipient replies after the data are:
lmtpdefer* 452, lmtpreject* 550, else 250.

Every accepted message is recorded in --dir as NAME-SEQ.eml (the bytes as
received, dot-stuffing undone) and NAME-SEQ.txt (one "key value" line per
fact: mail_from, mail_options, mail_dsn, rcpt, rcpt_dsn, tls, peer_port),
SEQ counting from 1 per server. The .txt file appears last (renamed into
place), before the reply to the data is sent. Prints "ready" once listening.
"""

import argparse
import asyncio
import os
import ssl
import sys

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

DSN_MAIL = ("RET", "ENVID")
DSN_RCPT = ("NOTIFY", "ORCPT")


def split_params(arg, names):
    """Takes the named ESMTP parameters off a MAIL/RCPT argument."""
    if arg is None:
        return arg, []
    end = arg.find(">")
    head, tail = (arg[: end + 1], arg[end + 1 :]) if end >= 0 else (arg, "")
    kept, taken = [], []
    for p in tail.split():
        if p.partition("=")[0].upper() in names:
            taken.append(p)
        else:
            kept.append(p)
    return " ".join([head] + kept), taken


class DsnMixin:
    """MAIL/RCPT with DSN parameters, recorded on the envelope."""

    async def smtp_MAIL(self, arg):
        arg, taken = split_params(arg, DSN_MAIL)
        if taken and "dsn" not in self.peer_opts:
            await self.push("555 5.5.4 DSN parameters without DSN")
            return
        await super().smtp_MAIL(arg)
        if self.envelope.mail_from:
            self.envelope.mail_dsn = taken

    async def smtp_RCPT(self, arg):
        arg, taken = split_params(arg, DSN_RCPT)
        if taken and "dsn" not in self.peer_opts:
            await self.push("555 5.5.4 DSN parameters without DSN")
            return
        before = len(self.envelope.rcpt_tos)
        await super().smtp_RCPT(arg)
        if len(self.envelope.rcpt_tos) > before and taken:
            dsn = getattr(self.envelope, "rcpt_dsn", [])
            dsn.append(self.envelope.rcpt_tos[-1] + " " + " ".join(taken))
            self.envelope.rcpt_dsn = dsn


class PeerSMTP(DsnMixin, SMTP):
    pass


class PeerLMTP(DsnMixin, LMTP):
    pass


class Handler:
    def __init__(self, name, opts, outdir):
        self.name = name
        self.opts = opts
        self.outdir = outdir
        self.seq = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        extra = []
        if "pipelining" in self.opts:
            extra.append("250-PIPELINING")
        if "dsn" in self.opts:
            extra.append("250-DSN")
        extra.append("250-ENHANCEDSTATUSCODES")
        return responses[:-1] + extra + responses[-1:]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address.partition("@")[0].lower().startswith("mailreject"):
            return "550 5.7.1 Sender refused"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.partition("@")[0].lower()
        if local.startswith("defer"):
            return "450 4.2.1 Mailbox busy, try later"
        if local.startswith("reject"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient ok"

    def record(self, session, envelope):
        self.seq += 1
        base = os.path.join(self.outdir, "%s-%d" % (self.name, self.seq))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        lines = [
            "mail_from " + envelope.mail_from,
            "mail_options " + " ".join(envelope.mail_options),
            "mail_dsn " + " ".join(getattr(envelope, "mail_dsn", [])),
        ]
        lines += ["rcpt " + r for r in envelope.rcpt_tos]
        lines += ["rcpt_dsn " + r for r in getattr(envelope, "rcpt_dsn", [])]
        lines.append("tls %d" % (1 if session.ssl is not None else 0))
        lines.append("peer_port %d" % session.peer[1])
        with open(base + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(base + ".tmp", base + ".txt")

    async def handle_DATA(self, server, session, envelope):
        self.record(session, envelope)
        if "lmtp" not in self.opts:
            return "250 2.0.0 Message accepted"
        replies = []
        for r in envelope.rcpt_tos:
            local = r.partition("@")[0].lower()
            if local.startswith("lmtpdefer"):
                replies.append("452 4.2.2 Mailbox full")
            elif local.startswith("lmtpreject"):
                replies.append("550 5.2.1 Mailbox disabled")
            else:
                replies.append("250 2.0.0 Delivered to " + r)
        return "\r\n".join(replies)


def tls_context(args, opts):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if "tls13" in opts:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


async def main(args):
    loop = asyncio.get_running_loop()
    for spec in args.server:
        name, port, optstr = spec.split(":")
        opts = set(o for o in optstr.split(",") if o)
        handler = Handler(name, opts, args.dir)
        cls = PeerLMTP if "lmtp" in opts else PeerSMTP
        kwargs = dict(
            hostname="mx.test",
            decode_data=False,
            enable_SMTPUTF8="utf8" in opts,
            data_size_limit=1000 if "small" in opts else 33554432,
        )
        if "tls" in opts:
            kwargs["tls_context"] = tls_context(args, opts)

        def factory(cls=cls, handler=handler, opts=opts, kwargs=kwargs):
            server = cls(handler, **kwargs)
            server.peer_opts = opts
            return server

        await loop.create_server(factory, "127.0.0.1", int(port))
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--server", action="append", default=[])
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
