"""8-bit mail for a server that does not offer 8BITMIME (docs/delivery.md, 8-bit
content): Transform_8BitMIME_Content = ifneeded (the default) converts the MIME
structure to 7 bit, strict fails what cannot be converted, strip clears the 8th
bit, no sends as is. A server that offers 8BITMIME always gets the message as it
was received. The MX here is aiosmtpd with 8BITMIME left out of its EHLO reply.
"""
import email
import email.policy

import pytest

import nsd
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import deliver_one, finish, split_received
from conftest import wait_for

SENDER = "s@sender.example.test"
TEXT = "Grüße aus Köln, ½ € — ünïcödé\r\nzweite Zeile = gleich\r\n"
BLOB = bytes(range(256)) * 4


def eightbit_text(rcpt, subject="8bit"):
    return (f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
            "Message-ID: <8bit@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + TEXT).encode()


def eightbit_multipart(rcpt):
    return (f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: parts\r\n"
            "Message-ID: <parts@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
            "preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + TEXT +
            "--b1\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: binary\r\n\r\n").encode() + \
        BLOB.replace(b"\r", b"").replace(b"\n", b"") + b"\r\n--b1--\r\n"


def deliver(rig, mx, rcpt, data, body="BODY=8BITMIME"):
    return deliver_one(rig, mx, rcpt, data, sender=SENDER,
                       mail_params=f" {body}" if body else "")


def lf(text):
    return text.replace("\r\n", "\n")


def assert_7bit(data):
    assert max(data) < 0x80, data
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_ifneeded_converts_text_to_quoted_printable(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, eightbitmime=False)
    rig = rig_factory(options={"Send_8BitMIME": '"ifavailable"'})
    rcpt = "qp@bytes.example.test"
    msgid, m, d = deliver(rig, mx1, rcpt, eightbit_text(rcpt))
    assert not any(o.upper().startswith("BODY=") for o in m.mail_options), m.mail_options
    assert f"SIZE={len(m.data)}" in m.mail_options  # the size of what was sent
    assert_7bit(m.data)
    hdr, rest = split_received(m.data)
    assert f"id {msgid}".encode() in hdr
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in rest
    assert b"Content-Transfer-Encoding: 8bit" not in rest
    parsed = email.message_from_bytes(rest, policy=email.policy.default)
    assert parsed["Subject"] == "8bit"
    assert lf(parsed.get_content()) == lf(TEXT)
    assert f"message_downconverted id={msgid} parts=1 malformed=0" in rig.paniclog()
    finish(rig, mx1)


def test_ifneeded_converts_each_part_of_a_multipart(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, eightbitmime=False)
    rig = rig_factory()  # Send_8BitMIME = no, Transform_8BitMIME_Content = ifneeded
    rcpt = "parts@bytes.example.test"
    data = eightbit_multipart(rcpt)
    msgid, m, d = deliver(rig, mx1, rcpt, data)
    assert_7bit(m.data)
    _, rest = split_received(m.data)
    parsed = email.message_from_bytes(rest, policy=email.policy.default)
    text, blob = list(parsed.iter_parts())
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert lf(text.get_content()) == lf(TEXT)[:-1]  # the last CRLF belongs to the boundary
    assert blob["Content-Transfer-Encoding"] == "base64"
    assert blob.get_content() == BLOB.replace(b"\r", b"").replace(b"\n", b"")
    assert f"message_downconverted id={msgid} parts=2 malformed=0" in rig.paniclog()
    finish(rig, mx1)


def test_server_with_8bitmime_gets_the_message_unchanged(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)  # offers 8BITMIME
    rig = rig_factory(options={"Send_8BitMIME": '"ifavailable"',
                               "Transform_8BitMIME_Content": '"strict"'})
    rcpt = "keep@bytes.example.test"
    data = eightbit_text(rcpt)
    msgid, m, d = deliver(rig, mx1, rcpt, data)
    assert "BODY=8BITMIME" in m.mail_options
    assert split_received(m.data)[1] == data
    assert "message_downconverted" not in rig.paniclog()
    finish(rig, mx1)


@pytest.mark.parametrize("mode, expected", [
    ("no", lambda data: data),                                # sent as is
    ("strip", lambda data: bytes(b & 0x7F for b in data)),    # the 8th bit cleared
])
def test_no_and_strip(rig_factory, mx_farm, mode, expected):
    mx1 = mx_farm.add("mx1", nsd.MX1, eightbitmime=False)
    rig = rig_factory(options={"Transform_8BitMIME_Content": f'"{mode}"'})
    rcpt = f"{mode}@bytes.example.test"
    data = eightbit_text(rcpt)
    msgid, m, d = deliver(rig, mx1, rcpt, data)
    assert split_received(m.data)[1] == expected(data)
    assert (f"message_downconverted id={msgid}" in rig.paniclog()) == (mode == "strip")
    finish(rig, mx1)


def test_ifneeded_sends_8bit_headers_as_is_and_says_why(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, eightbitmime=False)
    rig = rig_factory()
    rcpt = "hdr@bytes.example.test"
    data = eightbit_text(rcpt, subject="Grüße")
    msgid, m, d = deliver(rig, mx1, rcpt, data)
    assert split_received(m.data)[1] == data
    assert (f'downconversion_skipped id={msgid} reason="8-bit octets in header fields"'
            in rig.paniclog())
    finish(rig, mx1)


def test_strict_fails_what_cannot_be_made_7bit(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, eightbitmime=False)
    rig = rig_factory(options={"Transform_8BitMIME_Content": '"strict"'})
    rcpt = "strict@bytes.example.test"
    msgid = rig.send(SENDER, [rcpt], eightbit_text(rcpt, subject="Grüße"),
                     mail_params=" BODY=8BITMIME")
    (p,) = rig.wait_records(msgid, "P")
    assert p.response.startswith("554 5.6.3 "), p.response
    assert "8-bit octets in header fields" in p.response
    assert mx1.received_by(rcpt) == []
    # a message whose body alone is 8-bit is still converted and delivered
    rcpt2 = "strict2@bytes.example.test"
    msgid2, m, d = deliver(rig, mx1, rcpt2, eightbit_text(rcpt2))
    assert_7bit(m.data)
    finish(rig, mx1)


def test_reload_changes_the_mode(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, eightbitmime=False)
    rig = rig_factory(options={"Transform_8BitMIME_Content": '"no"'})
    rcpt = "reload@bytes.example.test"
    data = eightbit_text(rcpt)
    _, m, _ = deliver(rig, mx1, rcpt, data)
    assert split_received(m.data)[1] == data
    opts = dict(rig.options)
    opts["Transform_8BitMIME_Content"] = '"ifneeded"'
    rig.reload(options=opts)
    rcpt2 = "reload2@bytes.example.test"
    _, m2, _ = deliver(rig, mx1, rcpt2, eightbit_text(rcpt2))
    assert_7bit(m2.data)
    wait_for(lambda: "message_downconverted" in rig.paniclog(), what="the log line")
    finish(rig, mx1)
