"""Outbound connections as the MX sees them: reuse across messages,
Max_Deliveries_Per_Connection, and the connection limits per queue, per MX host
(Host stanza) and per process (Server_Max_Outbound_Connections), which must never
be exceeded (docs/delivery.md, Connections and limits)."""
import time

import pytest

import nsd
from delivery_kit import *  # noqa: F401,F403 (fixtures: nsd_server, mx_farm, rig_factory, tls_pki)
from delivery_kit import finish, message
from conftest import wait_for

SENDER = "s@sender.example.test"


def submit_many(rig, rcpts, tag):
    """One message per recipient over one client session; returns the queue ids."""
    s = rig.submitter()
    try:
        return [s.send(SENDER, [r], message(f"{tag} {i}", to=r)) for i, r in enumerate(rcpts)]
    finally:
        s.close()


def wait_all(mx, rcpts, timeout=60):
    want = sorted(rcpts)

    def done():
        got = sorted(r for m in mx.received() for r in m.rcpt_tos)
        return got if len(got) >= len(want) else None
    got = wait_for(done, timeout=timeout, what=f"{len(want)} messages at {mx.name}")
    assert got == want  # each exactly once


def test_connections_are_reused(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory(options={"Max_Outbound_Connections": "4", "Idle_Timeout": "5"})
    rcpts = [f"u{i}@bulk.example.test" for i in range(200)]
    submit_many(rig, rcpts, "bulk")
    wait_all(mx1, rcpts)
    sessions = mx1.session_count()
    assert mx1.max_concurrent <= 4, f"{mx1.max_concurrent} simultaneous sessions"
    # a session that finds nothing left to send when it is ready QUITs at once, so a few
    # more than 4 may be opened over time; what matters is many messages per session
    assert sessions <= 20, f"{sessions} sessions for 200 messages"
    assert max(s.messages for s in mx1.sessions) >= 40
    finish(rig, mx1)


def test_max_deliveries_per_connection(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    rig = rig_factory(options={"Max_Deliveries_Per_Connection": "10", "Idle_Timeout": "5"})
    rcpts = [f"u{i}@bulk.example.test" for i in range(200)]
    submit_many(rig, rcpts, "per-conn")
    wait_all(mx1, rcpts)
    used = [s for s in mx1.sessions if s.messages]
    assert len(used) >= 20, f"{len(used)} sessions carried 200 messages"
    assert max(s.messages for s in used) <= 10, [s.messages for s in used]
    assert len(used) < 200  # still reused: several messages per session
    finish(rig, mx1)


def test_max_outbound_connections_per_queue(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx1.data_delay = 0.3
    rig = rig_factory(options={"Max_Outbound_Connections": "3"})
    rcpts = [f"u{i}@limits.example.test" for i in range(60)]
    submit_many(rig, rcpts, "limit")
    wait_all(mx1, rcpts)
    assert mx1.max_concurrent <= 3, f"{mx1.max_concurrent} simultaneous sessions"
    assert mx1.max_concurrent >= 2, "the allowed parallelism was not used"
    mx1.data_delay = 0
    finish(rig, mx1)


def test_host_stanza_caps_an_mx_shared_by_two_domains(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx1.data_delay = 0.3
    rig = rig_factory(extra='Host "mx1.example.test" { Max_Outbound_Connections = 2 }\n')
    rcpts = [f"u{i}@shared{1 + i % 2}.example.test" for i in range(30)]
    submit_many(rig, rcpts, "host")
    wait_all(mx1, rcpts)
    assert mx1.max_concurrent <= 2, f"{mx1.max_concurrent} simultaneous sessions to mx1"
    assert mx1.max_concurrent == 2
    assert {p.domain for p in rig.records(type="D")} >= {"shared1.example.test",
                                                          "shared2.example.test"}
    mx1.data_delay = 0
    finish(rig, mx1)


def test_server_max_outbound_connections(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mxb = mx_farm.add("mx-b", nsd.MX_B)
    mx1.data_delay = mxb.data_delay = 0.3
    rig = rig_factory(options={"Server_Max_Outbound_Connections": "2"})
    rcpts = [f"u{i}@{'limits' if i % 2 else 'b'}.example.test" for i in range(30)]
    submit_many(rig, rcpts, "server")
    wait_for(lambda: len(mx1.received()) + len(mxb.received()) >= 30, timeout=60,
             what="30 messages over mx1 and mx-b")
    assert mx_farm.max_concurrent <= 2, f"{mx_farm.max_concurrent} simultaneous sessions"
    assert mx1.received() and mxb.received()
    mx1.data_delay = mxb.data_delay = 0
    time.sleep(0.2)
    finish(rig, mx1)


def test_scope_max_outbound_connections_over_a_regex_domain(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    mx1.data_delay = 0.3
    rig = rig_factory(extra='Domain "/^shared[12]\\.example\\.test$/" '
                            '{ Scope_Max_Outbound_Connections = 2 }\n')
    rcpts = [f"u{i}@shared{1 + i % 2}.example.test" for i in range(20)]
    submit_many(rig, rcpts, "scope")
    wait_all(mx1, rcpts, timeout=10)
    assert mx1.max_concurrent <= 2, f"{mx1.max_concurrent} simultaneous sessions"
    mx1.data_delay = 0
    finish(rig, mx1)


def test_max_recipients_per_connection_does_not_stall_the_queue(rig_factory, mx_farm):
    mx1 = mx_farm.add("mx1", nsd.MX1)
    # a used-up connection must make way at once, not sit idle for Idle_Timeout (20 s)
    rig = rig_factory(options={"Max_Outbound_Connections": "1", "Idle_Timeout": "20"},
                      extra='Domain "bulk.example.test" { Max_Recipients_Per_Connection = 2 }\n')
    rcpts = [f"u{i}@bulk.example.test" for i in range(10)]
    submit_many(rig, rcpts, "rcpts-per-conn")
    wait_for(lambda: len(mx1.received()) >= 10, timeout=15,
             what="10 messages within one Idle_Timeout")
    assert all(s.messages <= 2 for s in mx1.sessions)
    assert mx1.session_count() >= 5
    finish(rig, mx1)
