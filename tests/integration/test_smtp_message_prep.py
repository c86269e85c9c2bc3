"""Message preparation: Received always, Message-ID and Date when missing
(RFC2822_MessageID_Header / RFC2822_Date_Header), pedantic refusals, messages
without a header section (RFC2822_Missing_Headers), trace header options."""
import datetime
import re
import time

import pytest

from conftest import wait_for
from smtpkit import HOSTNAME, start_server

RELAY = 'Relay_Hosts = ( "127.0.0.1" )\n'


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "message_prep", listens={
        "pedantic": ("127.0.0.1", RELAY + 'Pathway = "pedantic"'),
        "allow": ("127.0.0.1", RELAY + 'Pathway = "allow"'),
        "notrace": ("127.0.0.1", RELAY + 'Pathway = "notrace"'),
        "rcvhost": ("127.0.0.1", RELAY + 'Received_Hostname = "relay.example"'),
    }, global_extra=(
        'Pathway "pedantic" { RFC2822_MessageID_Header = pedantic\n'
        '                     RFC2822_Date_Header = pedantic }\n'
        'Pathway "allow" { RFC2822_Missing_Headers = allow }\n'
        'Pathway "notrace" { RFC2822_Trace_Headers = false\n'
        '                    RFC2822_MessageID_Header = ignore RFC2822_Date_Header = ignore }\n'))
    yield s
    s.kill()


@pytest.fixture(autouse=True)
def healthy(srv):
    yield
    srv.assert_healthy()


def send(srv, data, listen="main", rcpts=("r@rcpt.test",)):
    """The reply after the dot for raw DATA bytes (already CRLF, no dots at line starts)."""
    with srv.session(listen) as c:
        assert c.cmd("MAIL FROM:<s@sender.test>").code == 250
        for r in rcpts:
            assert c.cmd(f"RCPT TO:<{r}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(data + b".\r\n")
        r = c.read_reply()
        c.quit()
        return r, c


def date_ok(value):
    dt = datetime.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S +0000")
    return abs(dt.replace(tzinfo=datetime.timezone.utc).timestamp() - time.time()) < 120


BARE = b"From: <s@sender.test>\r\nSubject: bare\r\n\r\nno id, no date\r\n"


def test_message_id_and_date_added_when_missing(srv):
    r, _ = send(srv, BARE)
    m = srv.message(r.queued_id)
    assert m.body == BARE
    fields = m.prepend_fields()
    assert [n for n, _ in fields] == ["Received", "Message-ID", "Date"], fields
    local = r.queued_id.replace("/", ".")
    assert fields[1][1] == f"<{local}@{HOSTNAME}>"
    assert date_ok(fields[2][1]), fields[2]
    # the Received header's date and the added Date agree
    assert fields[0][1].endswith("; " + fields[2][1])


def test_nothing_added_when_present(srv):
    data = (b"message-id: <mine@client.test>\r\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"Subject: has both\r\n\r\nbody\r\n")
    r, _ = send(srv, data)
    m = srv.message(r.queued_id)
    assert [n for n, _ in m.prepend_fields()] == ["Received"]
    assert m.body == data


@pytest.mark.parametrize("present, added", [
    (b"Message-ID: <x@client.test>\r\n", "Date"),
    (b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n", "Message-ID"),
])
def test_only_the_missing_one_is_added(srv, present, added):
    r, _ = send(srv, b"Subject: one\r\n" + present + b"\r\nbody\r\n")
    assert [n for n, _ in srv.message(r.queued_id).prepend_fields()] == ["Received", added]


def test_header_in_the_body_does_not_count(srv):
    data = b"Subject: tricky\r\n\r\nMessage-ID: <in-body@client.test>\r\nDate: never\r\n"
    r, _ = send(srv, data)
    assert [n for n, _ in srv.message(r.queued_id).prepend_fields()] == [
        "Received", "Message-ID", "Date"]


@pytest.mark.parametrize("data, what", [
    (b"Subject: x\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n", "Message-ID"),
    (b"Subject: x\r\nMessage-ID: <p@client.test>\r\n\r\nbody\r\n", "Date"),
])
def test_pedantic_refuses_a_missing_header(srv, data, what):
    before = set(srv.messages())
    r, c = send(srv, data, "pedantic")
    assert r == (550, "5.6.0") and what in r.msg, r
    rej = srv.rejects_for(c)
    assert (rej[0]["P"], rej[0]["E"], rej[0]["PATH"]) == ("data", "550", "pedantic")
    wait_for(lambda: set(srv.messages()) == before, timeout=5, what="refused message removed")


def test_pedantic_accepts_a_complete_message(srv):
    data = (b"Subject: x\r\nMessage-ID: <p@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000"
            b"\r\n\r\nbody\r\n")
    r, _ = send(srv, data, "pedantic")
    assert r.queued_id, r
    assert srv.message(r.queued_id).listener == "pedantic"


def test_message_without_header_section_is_refused_by_default(srv):
    r, _ = send(srv, b"Hello, no headers here.\r\nSecond line.\r\n")
    assert r == (550, "5.6.0"), r


def test_message_without_header_section_is_accepted_with_allow(srv):
    data = b"Hello, no headers here.\r\nSecond line.\r\n"
    r, _ = send(srv, data, "allow")
    assert r.queued_id, r
    m = srv.message(r.queued_id)
    assert m.body == data
    assert [n for n, _ in m.prepend_fields()] == ["Received", "Message-ID", "Date"]


def test_no_header_section_body_lines_do_not_count_as_headers(srv):
    data = b"Hello, no headers here.\r\nMessage-ID: <in-body@client.test>\r\nDate: someday\r\n"
    r, _ = send(srv, data, "allow")
    assert r.queued_id, r
    assert [n for n, _ in srv.message(r.queued_id).prepend_fields()] == [
        "Received", "Message-ID", "Date"]


def test_empty_message_is_refused_by_default(srv):
    r, _ = send(srv, b"")
    assert r == (550, "5.6.0"), r


def test_trace_headers_off_and_ignore_policies(srv):
    r, _ = send(srv, BARE, "notrace")
    m = srv.message(r.queued_id)
    assert m.prepend == b"" and m.body == BARE


def test_received_hostname(srv):
    r, _ = send(srv, BARE, "rcvhost")
    m = srv.message(r.queued_id)
    rec = m.prepend_field("Received")[0]
    assert re.search(rf"\tby relay\.example \(celer\) with ESMTP id {re.escape(r.queued_id)}\r\n",
                     rec), rec
    # Message-ID still uses the host name
    assert m.prepend_field("Message-ID") == [f"<{r.queued_id.replace('/', '.')}@{HOSTNAME}>"]


def test_celerd_survived_and_stops_cleanly(srv):
    srv.send_ok("last")
    srv.assert_clean_stop()
