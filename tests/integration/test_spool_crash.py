"""Durability of the spool: kill -9 under load, and a full disk.

The crash test sends a few thousand messages over several sessions and records
the id of every message that got "250 ... queued as <id>". It then kills celerd
with SIGKILL mid-load and starts it again. Every recorded id must be in the spool,
complete, exactly once; every other file in the spool must be a message whose
DATA was sent but not yet answered when celerd died (it became durable an
instant before the kill, so its 250 never left: RFC 5321 6.1 duplicates); no
incomplete or corrupt file may remain.

The disk-full test puts the spool on a small ext4 file system (a loop mount,
as root) or, where mounting is impossible, injects ENOSPC at the spool's write
calls (CELER_SPOOL_FAULT). Either way the client gets 452 4.3.1, nothing
acknowledged is lost, nothing half-written stays, and celerd keeps serving.
"""
import os
import re
import shutil
import signal
import smtplib
import subprocess
import threading
import time

import pytest

import spoolfile
from conftest import Celerd, free_port, wait_for
from mx import MxFarm

DOMAIN = "hold.test"  # suspended: messages stay in the spool


def config(port, extra=""):
    return f"""
Spoolbase = "spool"
Pidfile = "run/celerd.pid"
Relay_Hosts = ( "127.0.0.0/8" )
ESMTP_Listener {{ Listen "127.0.0.1:{port}" {{ }} }}
ec_logger "l" {{
  mainlog = "log/mainlog.ec"
  rejectlog = "log/rejectlog.ec"
  paniclog = "log/paniclog.ec"
}}
Domain "{DOMAIN}" {{ Suspend_Delivery = true }}
{extra}
"""


def message(seq, size=600, to=f"r@{DOMAIN}"):
    body = ("x" * 70 + "\r\n") * max(1, size // 72)
    return (f"From: <s@src.test>\r\nTo: <{to}>\r\nSubject: crash test {seq}\r\n"
            f"X-Test-Seq: {seq}\r\n\r\n{body}").encode()


class Sender(threading.Thread):
    """One SMTP session sending numbered messages until told to stop or cut off;
    rcpts(seq) gives each message's recipients (default: one, in the held domain)."""

    def __init__(self, port, first_seq, step, rcpts=lambda seq: [f"r@{DOMAIN}"]):
        super().__init__(daemon=True)
        self.port = port
        self.rcpts = rcpts
        self.seq = first_seq
        self.step = step
        self.acked = {}          # id -> seq
        self.unanswered = set()  # seqs whose DATA was sent without a reply
        self.stop = threading.Event()

    def run(self):
        try:
            s = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
            s.ehlo("crash.test")
        except OSError:
            return
        while not self.stop.is_set():
            seq = self.seq
            self.seq += self.step
            try:
                s.mail("s@src.test")
                rcpts = self.rcpts(seq)
                for r in rcpts:
                    s.rcpt(r)
                self.unanswered.add(seq)
                code, text = s.data(message(seq, to=rcpts[0]))
            except (OSError, smtplib.SMTPException):
                return  # cut off: seq stays unanswered
            self.unanswered.discard(seq)
            m = re.search(rb"queued as (\S+)", text)
            assert code == 250 and m, (code, text)
            self.acked[m.group(1).decode()] = seq


def kill9_and_collect(d, senders):
    """SIGKILL celerd mid-load, stop the senders: {id: seq} of every acknowledged message
    and the set of seqs whose DATA got no reply."""
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    for s in senders:
        s.stop.set()
        s.join(timeout=30)
    acked = {}
    for s in senders:
        acked.update(s.acked)
    return acked, set().union(*(s.unanswered for s in senders))


def spool_contents(spoolbase):
    """id -> X-Test-Seq of every complete message; raises on incomplete/corrupt files."""
    out = {}
    for msgid in spoolfile.list_messages(spoolbase):
        m = spoolfile.read_id(spoolbase, msgid)  # raises SpoolError if not complete
        seq = re.search(rb"X-Test-Seq: (\d+)", m.data)
        out[msgid] = int(seq.group(1)) if seq else None
    return out


def test_kill9_under_load_loses_nothing_acknowledged(tmp_path):
    port = free_port()
    d = Celerd(tmp_path, config(port))
    d.start()
    senders = [Sender(port, i, 8) for i in range(8)]
    for s in senders:
        s.start()
    wait_for(lambda: sum(len(s.acked) for s in senders) >= 2500, timeout=120,
             what="2500 acknowledged messages")
    acked, unanswered = kill9_and_collect(d, senders)
    assert len(acked) >= 2500

    # restart: recovery removes what is incomplete and keeps the rest
    # (counted in the paniclog alone: stderr gets the same line sooner than the batched
    # paniclog, so mixing the two could pair the first run's line with this run's count)
    pattern = r"spool_recovered complete=(\d+) incomplete_removed=(\d+) corrupt_quarantined=(\d+)"
    before = len(re.findall(pattern, d.paniclog.read_text()))  # the first run logged one too
    d2 = Celerd(tmp_path, config(port))
    d2.start()
    wait_for(lambda: len(re.findall(pattern, d2.paniclog.read_text())) > before, timeout=60,
             what="recovery")
    rec = list(re.finditer(pattern, d2.paniclog.read_text()))[-1]
    assert int(rec.group(3)) == 0, "nothing may be corrupt after a crash"
    assert d2.stop() == 0, d2.stderr()

    contents = spool_contents(tmp_path / "spool")
    # every acknowledged message is there, complete, with its own content
    missing = [i for i in acked if i not in contents]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:3]}"
    for msgid, seq in acked.items():
        assert contents[msgid] == seq
    # everything else was in flight (DATA sent, no reply) when celerd died
    extra = {i: seq for i, seq in contents.items() if i not in acked}
    assert all(seq in unanswered for seq in extra.values()), (extra, unanswered)
    assert len(extra) <= len(senders)
    # exactly once: no message content appears twice
    seqs = list(contents.values())
    assert len(seqs) == len(set(seqs))
    assert int(rec.group(1)) == len(contents)
    assert not (tmp_path / "spool" / "corrupt").exists() or \
        not any((tmp_path / "spool" / "corrupt").iterdir())


def test_kill9_while_relaying_delivers_every_acknowledged_message(tmp_path):
    """The same crash while celerd relays: files of delivered messages are reused for new
    ones (spool_recycle.h) and progress records are appended for half-delivered ones.
    After the restart every recipient of every acknowledged message is delivered, and
    nothing is corrupt."""
    farm = MxFarm()
    try:
        mx = farm.add("mx", "127.0.0.11")
        seen = set()

        def defer_first(addr):  # every b.test recipient is deferred once: T, then D
            if addr.startswith("d-") and addr not in seen:
                seen.add(addr)
                return "451 4.7.1 try again"
            return None
        mx.rcpt_reply = defer_first
        route = f'Routes = ( "smtp://127.0.0.11?port={farm.port}" )'
        extra = (f'Domain "a.test" {{ {route} }}\nDomain "b.test" {{ {route} }}\n'
                 "Retry_Interval = 1\nMax_Retry_Interval = 2\nDelayed_Queue_Scan_Interval = 1\n")
        port = free_port()
        d = Celerd(tmp_path, config(port, extra))
        d.start()
        rcpts = lambda seq: [f"r-{seq}@a.test", f"d-{seq}@b.test"]  # noqa: E731
        senders = [Sender(port, i, 4, rcpts) for i in range(4)]
        for s in senders:
            s.start()
        wait_for(lambda: sum(len(s.acked) for s in senders) >= 600 and len(mx.received()) >= 300,
                 timeout=120, what="600 acknowledged, 300 delivered")
        acked, _ = kill9_and_collect(d, senders)

        d2 = Celerd(tmp_path, config(port, extra))
        d2.start()

        def delivered():
            got = set()
            for m in mx.received():
                seq = re.search(rb"X-Test-Seq: (\d+)", m.data)
                got.update((int(seq.group(1)), r) for r in m.rcpt_tos)
            return got
        want = {(seq, r) for seq in acked.values() for r in rcpts(seq)}
        wait_for(lambda: want <= delivered(), timeout=120,
                 what=f"every recipient of {len(acked)} acknowledged messages delivered")
        wait_for(lambda: not spoolfile.list_messages(tmp_path / "spool"), timeout=30,
                 what="an empty spool")
        assert d2.stop() == 0, d2.stderr()
        log = d.paniclog.read_text()
        recoveries = re.findall(r"spool_recovered complete=\d+ incomplete_removed=\d+ "
                                r"corrupt_quarantined=(\d+)", log)
        assert len(recoveries) == 2 and recoveries[-1] == "0", log[-2000:]
        assert "spool_recover_corrupt" not in log, log[-2000:]
        assert not (tmp_path / "spool" / "corrupt").exists() or \
            not any((tmp_path / "spool" / "corrupt").iterdir())
    finally:
        farm.close()


def mount_small_fs(path, megabytes=6):
    """A small ext4 file system mounted at path; None where loop mounts are impossible."""
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
        return None
    image = path.parent / (path.name + ".img")
    subprocess.run(["truncate", "-s", f"{megabytes}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-o", "loop", str(image), str(path)], capture_output=True)
    return image if r.returncode == 0 else None


def send_one(port, seq, size):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        s.ehlo("full.test")
        s.mail("s@src.test")
        s.rcpt(f"r@{DOMAIN}")
        code, text = s.data(message(seq, size))
        s.quit()
    except smtplib.SMTPServerDisconnected:
        raise
    return code, text


def check_disk_full(tmp_path, port, d):
    acked, refused = {}, 0
    for seq in range(200):
        code, text = send_one(port, seq, 300_000)
        if code == 250:
            acked[re.search(rb"queued as (\S+)", text).group(1).decode()] = seq
        else:
            assert (code, text[:5]) == (452, b"4.3.1"), (code, text)
            refused += 1
            if refused >= 3:
                break
    assert refused >= 3, "the spool never filled up"
    assert d.proc.poll() is None
    # refusals are logged with their reason
    wait_for(lambda: "spool_" in d.log_text() and "No space left" in d.log_text(),
             what="the ENOSPC in the paniclog")
    return acked


def test_disk_full_gets_452_and_loses_nothing(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    image = mount_small_fs(spool)
    extra_env = None
    try:
        if image is None:
            # no loop mounts here: fail the 40th write and every one after it
            extra_env = {"CELER_SPOOL_FAULT": "write:ENOSPC:after=40"}
        d = Celerd(tmp_path, config(port))
        if extra_env:
            os.environ.update(extra_env)
        try:
            d.start()
        finally:
            if extra_env:
                os.environ.pop("CELER_SPOOL_FAULT", None)
        acked = check_disk_full(tmp_path, port, d)
        assert acked, "some messages must have fit"
        # nothing half-written: every file is a complete message, each acked one present
        contents = spool_contents(spool)
        assert set(contents) == set(acked), (sorted(contents), sorted(acked))
        for msgid, seq in acked.items():
            assert contents[msgid] == seq
        # a small message still gets an answer and the daemon keeps running
        code, _ = send_one(port, 999, 100)
        assert code in (250, 452)
        assert d.stop() == 0, d.stderr()
    finally:
        if image is not None:
            subprocess.run(["umount", str(spool)], capture_output=True)
