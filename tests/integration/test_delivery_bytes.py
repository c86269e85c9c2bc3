"""What arrives at the MX is what was sent: byte for byte, after the Received header
celerd prepends (and Message-ID/Date when the message had none). Dot-stuffing is undone
by the MX (aiosmtpd), so a line starting with "." must arrive as it was submitted.

Expectation for bare LF: celerd stores the body as received (RFC2822_Lone_LF_In_Body =
ignore) and its client sends every line ending as CRLF (docs/delivery.md), so a bare LF
in the body arrives as CRLF.
"""
import re

import nsd
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import deliver_one, finish, message, split_received

SENDER = "s@sender.example.test"


def deliver(rig, mx, rcpt, data, size_grows=0, **kw):
    msgid, m, d = deliver_one(rig, mx, rcpt, data, sender=SENDER, **kw)
    assert d.size + size_grows == len(m.data)  # the stored size (Received included)
    return msgid, m


def check_received_header(hdr, msgid, rcpt):
    assert re.match(rb"Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby celer\.test ",
                    hdr), hdr
    assert f"id {msgid}".encode() in hdr and f"for <{rcpt}>".encode() in hdr, hdr


def test_dots_long_lines_and_headers_arrive_unchanged(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory()
    rcpt = "dots@bytes.example.test"
    body = (b".leading dot\r\n..two dots\r\n.\r\n. space\r\nmiddle . dot\r\n"
            + b"x" * 998 + b"\r\n"          # the longest legal line
            + b"y" * 5000 + b"\r\n"         # longer than RFC 5322 allows: passed through
            + b"tab\tand trailing space \r\n\r\n\r\nend without dot\r\n.")
    data = message("dots", body=body.decode(), to=rcpt,
                   extra_headers="X-Folded: first\r\n second line\r\n")
    msgid, m = deliver(rig, mx1, rcpt, data)
    hdr, rest = split_received(m.data)
    check_received_header(hdr, msgid, rcpt)
    # the final "." line without CRLF gets one (SMTP can only carry lines)
    assert rest == data + b"\r\n"
    finish(rig, mx1)


def test_8bit_message_with_body_8bitmime(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory(options={"Send_8BitMIME": '"ifavailable"'})
    rcpt = "8bit@bytes.example.test"
    body = "Grüße aus Köln, ½ € — ünïcödé\r\n".encode() + bytes(range(0x80, 0x100)) + b"\r\n"
    data = (f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: 8bit\r\n"
            "Message-ID: <8bit@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body
    msgid, m = deliver(rig, mx1, rcpt, data, mail_params=" BODY=8BITMIME")
    assert "BODY=8BITMIME" in m.mail_options, m.mail_options
    hdr, rest = split_received(m.data)
    check_received_header(hdr, msgid, rcpt)
    assert rest == data
    finish(rig, mx1)


def test_one_megabyte_message(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory()
    rcpt = "big@bytes.example.test"
    line = b"".join(bytes([0x21 + (i % 90)]) for i in range(76)) + b"\r\n"
    body = line * (1024 * 1024 // len(line) + 1)
    data = message("big", body=body.decode(), to=rcpt)
    assert len(data) > 1024 * 1024
    msgid, m = deliver(rig, mx1, rcpt, data)
    hdr, rest = split_received(m.data)
    check_received_header(hdr, msgid, rcpt)
    assert rest == data
    assert f"SIZE={len(m.data)}" in m.mail_options, m.mail_options  # SIZE of what is sent
    finish(rig, mx1)


def test_bare_lf_in_body_arrives_as_crlf(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory()
    rcpt = "lf@bytes.example.test"
    body = b"line one\nline two\r\nline three\nlast\r\n"
    data = message("bare lf", to=rcpt).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + body
    msgid, m = deliver(rig, mx1, rcpt, data, size_grows=2)  # two LF became CRLF on the way
    hdr, rest = split_received(m.data)
    check_received_header(hdr, msgid, rcpt)
    assert rest == data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    finish(rig, mx1)


def test_missing_message_id_and_date_are_added(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory()
    rcpt = "bare@bytes.example.test"
    data = f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: no id\r\n\r\nbody\r\n".encode()
    msgid, m = deliver(rig, mx1, rcpt, data)
    hdr, rest = split_received(m.data)
    check_received_header(hdr, msgid, rcpt)
    assert rest.endswith(data)
    added = rest[:len(rest) - len(data)]
    names = sorted(l.split(b":")[0].lower() for l in added.split(b"\r\n") if l and l[:1] not in b" \t")
    assert names == [b"date", b"message-id"], added
    assert re.search(rb"^Message-ID: <[^<>@\s]+@[^<>\s]+>\r$", added, re.M), added
    finish(rig, mx1)


def test_message_larger_than_the_mx_size_fails_without_sending(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, data_size_limit=2000)
    snd = mx_farm.add("mx-sender", nsd.MX_SENDER)
    rig = rig_factory()
    rcpt = "big@bytes.example.test"
    msgid = rig.send(SENDER, [rcpt], message("too big", body="z" * 3000 + "\r\n", to=rcpt))
    (p,) = rig.wait_records(msgid, "P")
    assert p.response.startswith("552 5.3.4"), p
    assert mx1.rcpt_attempts(rcpt) == [] and mx1.received() == []  # decided before MAIL
    bounce = [b for b in snd.wait_messages(1) if rcpt.encode() in b.data]
    assert bounce and b"552 5.3.4" in bounce[0].data
    rig.wait_spool_empty()
    mx1.data_size_limit = 32 << 20
    finish(rig, mx1)


def test_smtputf8_message_to_an_mx_without_smtputf8_fails(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)  # does not offer SMTPUTF8
    utf8 = mx_farm.add("mx-b", nsd.MX_B, smtputf8=True)
    rig = rig_factory()
    r1, r2 = "jürgen@bytes.example.test", "jürgen@b.example.test"
    data = message("utf8", to="x@example.test")
    id1 = rig.send("søren@sender.example.test", [r1], data, mail_params=" SMTPUTF8")
    id2 = rig.send("søren@sender.example.test", [r2], data, mail_params=" SMTPUTF8")
    (p,) = rig.wait_records(id1, "P")
    assert p.response.startswith("553 5.6.7"), p
    assert mx1.received() == []
    (m,) = utf8.wait_messages(1)
    assert m.rcpt_tos == [r2] and "SMTPUTF8" in m.mail_options and m.data.endswith(data)
    rig.wait_records(id2, "D")
    finish(rig, mx1)
