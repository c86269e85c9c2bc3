"""Shared fixtures for celer's integration tests.

Every test starts the real celerd (from $CELER_BUILD_DIR, default build/asan)
with its own temporary directory and free loopback ports, talks to it with
real clients, and stops it by its PID. Under ASan a leak or sanitizer error
makes celerd exit non-zero, so `Celerd.stop()` asserting a clean exit also
asserts "LeakSanitizer clean".
"""
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("CELER_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("CELER_BUILD_DIR", SOURCE_DIR / "build" / "asan")).resolve()
CELERD = BUILD_DIR / "src" / "bin" / "celerd"


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (bind to 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_celerd(*args, timeout=30):
    """Runs celerd to completion (check/dump modes); returns CompletedProcess."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
    return subprocess.run([str(CELERD), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


class Celerd:
    """One celerd process in the foreground (-d) with its own directory."""

    def __init__(self, workdir, config_text):
        self.dir = pathlib.Path(workdir)
        self.conf = self.dir / "celer.conf"
        self.conf.write_text(config_text)
        self.proc = None
        self.stderr_path = self.dir / "celerd.stderr"

    @property
    def paniclog(self):
        return self.dir / "log" / "paniclog.ec"

    def start(self, wait_line="started pid="):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([str(CELERD), "-c", str(self.conf), "-d"],
                                     cwd=self.dir, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=env)
        if wait_line:
            if wait_line == "started pid=":
                wait_line = f"started pid={self.proc.pid} "
            wait_for(lambda: wait_line in self.log_text() or self.proc.poll() is not None,
                     timeout=20, what=f"'{wait_line}' in celerd's log")
            assert self.proc.poll() is None, f"celerd exited early:\n{self.stderr()}"
        return self

    def stderr(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def log_text(self):
        text = self.stderr()
        if self.paniclog.exists():
            text += self.paniclog.read_text(errors="replace")
        return text

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops celerd by its PID; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._stderr.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self._stderr.close()


@pytest.fixture
def celerd_factory(tmp_path):
    started = []

    def make(config_text, start=True, **kw):
        d = Celerd(tmp_path, config_text)
        started.append(d)
        if start:
            d.start(**kw)
        return d

    yield make
    for d in started:
        d.kill()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    """(cert.pem, key.pem): a self-signed certificate made with openssl for this run
    (never committed)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=mx.test.example"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key
