"""Binary content (BODY=BINARYMIME, RFC 3030) relayed in BDAT chunks (docs/delivery.md,
binary content). celerd receives it with BDAT, keeps the octets as they came, and sends
them on only to a server that offers CHUNKING and BINARYMIME: in BDAT chunks of up to
64 KiB, the last one "BDAT n LAST", byte for byte (over LMTP too, with one reply per
recipient after LAST). A server without them gets nothing and
the message fails with 554 5.6.3. The MX is aiosmtpd with BDAT added (mx.py chunking=True).
"""
import nsd
from mx import DROP, MxFarm
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import finish, split_received

SENDER = "s@sender.example.test"
CHUNK_MAX = 65536


def binary_message(rcpt, size):
    """Headers, then octets no DATA could carry: NULs, bare CR and LF, lone dots."""
    head = (f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: binary\r\n"
            "Message-ID: <bin@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: binary\r\n\r\n").encode()
    pattern = bytes(range(256)) + b"\r\n.\r\n\n.\n\r.\r" + b"\x00" * 7
    body = (pattern * (size // len(pattern) + 1))[:size]
    return head + body


def send_binary(rig, rcpt, size=200_000):
    data = binary_message(rcpt, size)
    msgid = rig.send(SENDER, [rcpt], data, mail_params=" BODY=BINARYMIME", bdat=True)
    return msgid, data


def assert_chunked(m, data):
    assert "BODY=BINARYMIME" in m.mail_options, m.mail_options
    assert m.chunks is not None, "sent with DATA"
    assert len(m.chunks) > 2 and all(0 < n <= CHUNK_MAX for n in m.chunks), m.chunks
    assert sum(m.chunks) == len(m.data)
    assert split_received(m.data)[1] == data


def test_binary_message_goes_in_pipelined_bdat_chunks(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, chunking=True)
    rig = rig_factory()
    rcpt = "bin@bytes.example.test"
    msgid, data = send_binary(rig, rcpt)
    (m,) = mx1.wait_messages(1)
    (d,) = rig.wait_records(msgid, "D")
    assert_chunked(m, data)
    assert m.rcpt_tos == [rcpt]
    finish(rig, mx1)


def test_binary_message_in_lock_step_without_pipelining(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, chunking=True, pipelining=False)
    rig = rig_factory()
    rcpt = "step@bytes.example.test"
    msgid, data = send_binary(rig, rcpt, size=150_000)
    (m,) = mx1.wait_messages(1)
    rig.wait_records(msgid, "D")
    assert_chunked(m, data)
    finish(rig, mx1)


def test_other_mail_still_goes_with_data(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, chunking=True)
    rig = rig_factory()
    finish(rig, mx1)  # a plain message is delivered...
    (m,) = mx1.received()
    assert m.chunks is None  # ...with DATA, although CHUNKING is offered
    assert not any(o.upper().startswith("BODY=") for o in m.mail_options)


def test_server_without_chunking_gets_nothing_and_the_message_fails(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)  # 8BITMIME, no CHUNKING, no BINARYMIME
    rig = rig_factory()
    rcpt = "nochunk@bytes.example.test"
    msgid, _ = send_binary(rig, rcpt, size=1000)
    (p,) = rig.wait_records(msgid, "P")
    assert p.response.startswith("554 5.6.3 "), p.response
    assert "CHUNKING and BINARYMIME" in p.response
    assert mx1.received_by(rcpt) == [] and mx1.rcpt_attempts(rcpt) == []
    finish(rig, mx1)


def test_refused_chunk_is_retried_and_then_delivered(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, chunking=True)
    mx1.bdat_reply = {2: "452 4.3.1 Insufficient system storage"}
    rig = rig_factory()
    rcpt = "retry@bytes.example.test"
    msgid, data = send_binary(rig, rcpt)
    (t,) = rig.wait_records(msgid, "T")
    assert t.response.startswith("452 4.3.1 "), t.response
    assert mx1.received_by(rcpt) == []
    mx1.bdat_reply = None
    (m,) = mx1.wait_messages(1, timeout=30)
    rig.wait_records(msgid, "D", timeout=30)
    assert_chunked(m, data)
    finish(rig, mx1)  # the session was reset after the refusal and is still usable


def test_permanently_refused_last_chunk_fails_the_message(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, chunking=True)
    mx1.data_reply = "554 5.6.0 Content refused"  # the reply to BDAT LAST
    rig = rig_factory()
    rcpt = "refused@bytes.example.test"
    msgid, _ = send_binary(rig, rcpt)
    (p,) = rig.wait_records(msgid, "P")
    assert p.response.startswith("554 5.6.0 Content refused"), p.response
    mx1.data_reply = None
    finish(rig, mx1)


def test_connection_lost_between_chunks_is_transient(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1, chunking=True)
    mx1.bdat_reply = {1: DROP}  # hang up on the second chunk
    rig = rig_factory()
    rcpt = "drop@bytes.example.test"
    msgid, data = send_binary(rig, rcpt)
    (t,) = rig.wait_records(msgid, "T")
    assert t.stage in (8, 9), t  # sending the body, or waiting for the reply to LAST
    assert mx1.received_by(rcpt) == []
    mx1.bdat_reply = None
    (m,) = mx1.wait_messages(1, timeout=30)
    rig.wait_records(msgid, "D", timeout=30)
    assert_chunked(m, data)
    finish(rig, mx1)


def test_binary_message_over_lmtp_gets_a_reply_per_recipient(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx_farm.add("mx-sender", nsd.MX_SENDER)  # takes the bounce for the refused recipient
    lfarm = MxFarm()
    try:
        lmtp = lfarm.add("lmtp-mx", nsd.MX_LMTP, lmtp=True, chunking=True)
        lmtp.data_reply = {"bad@lmtp.example.test": "550 5.1.1 mailbox unavailable"}
        rig = rig_factory(extra=f'Domain "lmtp.example.test" {{ Delivery_Method = "LMTP" '
                                f'LMTP_Port = {lfarm.port} }}\n')
        data = binary_message("good@lmtp.example.test", 100_000)
        msgid = rig.send(SENDER, ["good@lmtp.example.test", "bad@lmtp.example.test"], data,
                         mail_params=" BODY=BINARYMIME", bdat=True)
        (m,) = lmtp.wait_messages(1)
        assert m.rcpt_tos == ["good@lmtp.example.test"]
        assert_chunked(m, data)
        rig.wait_records(msgid, "D")
        (p,) = rig.wait_records(msgid, "P")
        assert p.response.startswith("550 5.1.1 mailbox unavailable"), p
        finish(rig, mx1)
    finally:
        lfarm.close()
