"""The celerd daemon shell: start-up, pidfile, paniclog, reload, privileges, shutdown."""
import os
import pathlib
import pwd
import re
import signal
import textwrap

import pytest

from conftest import wait_for


def base_config(extra=""):
    return textwrap.dedent("""\
        Spoolbase = "spool"
        Pidfile = "run/celerd.pid"
        EventLoop "pool" { Concurrency = 3 }
        ec_logger "ec_logger1" {
          paniclog = "log/paniclog.ec"
        }
        """) + extra


def loop_threads(pid):
    names = []
    for t in pathlib.Path(f"/proc/{pid}/task").iterdir():
        names.append((t / "comm").read_text().strip())
    return names


def test_start_writes_pidfile_paniclog_and_loops(celerd_factory):
    d = celerd_factory(base_config())
    pid = d.proc.pid
    pidfile = d.dir / "run" / "celerd.pid"
    assert pidfile.read_text().strip() == str(pid)
    assert (d.dir / "spool").is_dir()
    # the log writer batches lines for a few milliseconds
    log = wait_for(lambda: d.paniclog.exists() and "started pid=" in d.paniclog.read_text() and
                   d.paniclog.read_text(), what="the start-up lines in the paniclog")
    assert re.search(rf"^\d+:celerd: notice: starting version=\S+ pid={pid} config=", log, re.M)
    assert re.search(rf"^\d+:celerd: notice: started pid={pid} loops=3$", log, re.M)
    threads = loop_threads(pid)
    assert sorted(t for t in threads if t.startswith("celer-loop-")) == \
        ["celer-loop-0", "celer-loop-1", "celer-loop-2"]
    assert d.stop() == 0, d.stderr()
    assert not pidfile.exists()
    assert re.search(rf"stopped pid={pid}", d.paniclog.read_text())


def test_sigterm_shutdown_is_clean_under_sanitizers(celerd_factory):
    d = celerd_factory(base_config())
    assert d.stop(signal.SIGTERM) == 0
    assert "LeakSanitizer" not in d.stderr()
    assert "runtime error" not in d.stderr()
    d2 = celerd_factory(base_config())
    assert d2.stop(signal.SIGINT) == 0
    assert "LeakSanitizer" not in d2.stderr()


def test_sighup_with_bad_config_keeps_running_config(celerd_factory):
    d = celerd_factory(base_config())
    good = d.conf.read_text()
    d.conf.write_text(good + "Force_Fsync = sometimes\nUnknown_Option = 1\n")
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "config_reload_rejected" in d.paniclog.read_text(), what="reload rejection")
    log = d.paniclog.read_text()
    assert re.search(r"error: config_error \S+celer.conf:\d+:15: option \"force_fsync\": expected a boolean", log)
    assert re.search(r"error: config_error \S+celer.conf:\d+:1: unknown option \"Unknown_Option\"", log)
    assert "errors=2: keeping the running configuration" in log
    assert d.proc.poll() is None
    # a good file is taken
    d.conf.write_text(good + "Hostname = \"reloaded.example\"\n")
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "config_reloaded" in d.paniclog.read_text(), what="reload")
    assert d.stop() == 0, d.stderr()


def test_sighup_reopens_rotated_paniclog(celerd_factory):
    d = celerd_factory(base_config())
    rotated = d.dir / "log" / "paniclog.ec.1"
    d.paniclog.rename(rotated)
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: d.paniclog.exists() and "config_reloaded" in d.paniclog.read_text(),
             what="log reopened after rotation")
    assert "signal name=SIGHUP" in rotated.read_text()
    assert d.stop() == 0


def test_static_option_change_needs_restart_warning(celerd_factory):
    d = celerd_factory(base_config())
    d.conf.write_text(d.conf.read_text().replace('Spoolbase = "spool"', 'Spoolbase = "spool2"'))
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "config_needs_restart option=spoolbase" in d.paniclog.read_text(),
             what="restart warning")
    assert d.stop() == 0


def test_refuses_to_start_over_live_pidfile(celerd_factory, tmp_path):
    d = celerd_factory(base_config())
    second = celerd_factory(base_config(), start=False)
    second.start(wait_line=None)
    assert second.proc.wait(timeout=20) == 1
    assert f"already_running pidfile=run/celerd.pid pid={d.proc.pid}" in second.log_text()
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_bad_config_does_not_start(celerd_factory):
    d = celerd_factory(base_config("Binding \"x\" { Relay_Hosts = ( \"1.2.3.4\" ) }\n"), start=False)
    d.start(wait_line=None)
    assert d.proc.wait(timeout=20) == 1
    assert "not valid in binding scope" in d.stderr()
    assert "not starting" in d.stderr()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_drops_privileges_per_security_scope(celerd_factory, tmp_path):
    nobody = pwd.getpwnam("nobody")
    os.chmod(tmp_path, 0o755)
    d = celerd_factory(base_config('Security { User = "nobody" Group = "nogroup" }\n'))
    status = pathlib.Path(f"/proc/{d.proc.pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
    assert uids == (str(nobody.pw_uid),) * 3
    wait_for(lambda: re.search(r"privileges_dropped user=nobody uid=\d+", d.paniclog.read_text()),
             what="the privilege drop in the paniclog")
    # files created for the daemon belong to the new user, so it can reopen them
    assert (d.dir / "spool").stat().st_uid == nobody.pw_uid
    assert d.paniclog.stat().st_uid == nobody.pw_uid
    d.paniclog.rename(d.dir / "log" / "old.ec")
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: d.paniclog.exists(), what="paniclog recreated by the unprivileged daemon")
    assert d.stop() == 0, d.stderr()


def test_unknown_security_user_is_an_error(celerd_factory):
    d = celerd_factory(base_config('Security { User = "no-such-user-celer" }\n'), start=False)
    d.start(wait_line=None)
    assert d.proc.wait(timeout=20) == 1
    assert 'user "no-such-user-celer" does not exist' in d.stderr()
