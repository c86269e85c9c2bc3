"""NSD serving test zones on a loopback port, for the delivery tests.

    ns = Nsd(tmp_dir, {"example.test": ZONE_TEXT}).start()
    ns.resolv_conf          # a resolv.conf for celerd: "nameserver 127.0.0.1:PORT"
    ns.query("a.example.test", "MX")   # dnspython, to check the zone itself
    ns.stop()

NSD daemonizes; its PID comes from its pid file and it is stopped by that PID
(SIGTERM, then SIGKILL). The `nsd_server` fixture (session scope) serves
EXAMPLE_TEST_ZONE, the zone every test_delivery_*.py file routes through:
MX hosts at fixed 127.0.0.x addresses, so each test only has to listen on
those addresses with a port of its own and tell celerd that port
(Remote_SMTP_Port). Names NSD does not serve (anything under `example.`)
are answered REFUSED, which a stub resolver reports as SERVFAIL.
"""
import os
import pathlib
import signal
import socket
import subprocess
import textwrap
import time

import pytest

from conftest import free_port, wait_for

# Fixed loopback addresses of the test MXs (see EXAMPLE_TEST_ZONE).
MX1, MX2, MX3 = "127.0.0.11", "127.0.0.12", "127.0.0.13"
MX_DEAD = "127.0.0.19"       # nothing ever listens there: connections are refused
MX_SENDER = "127.0.0.20"     # the sender's domain MX (bounces arrive here)
MX_B = "127.0.0.21"          # the MX of a second recipient domain
MX_TLS = "127.0.0.22"        # a STARTTLS MX (its certificate names tls-mx.example.test)
MX_LMTP = "127.0.0.23"
GATEWAY = "127.0.0.24"       # a smart host that is nobody's MX
IMPLICIT = "127.0.0.25"      # the A record of a domain without MX records
MX_TLS_WRONG = "127.0.0.26"  # a STARTTLS MX whose certificate names another host
MX_TLS_BROKEN = "127.0.0.27" # offers STARTTLS, then fails the handshake

EXAMPLE_TEST_ZONE = textwrap.dedent(f"""\
    $ORIGIN example.test.
    $TTL 300
    @           IN SOA  ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
    @           IN NS   ns.example.test.
    ns          IN A    127.0.0.1
    mx1         IN A    {MX1}
    mx2         IN A    {MX2}
    mx3         IN A    {MX3}
    dead-mx     IN A    {MX_DEAD}
    mx-sender   IN A    {MX_SENDER}
    mx-b        IN A    {MX_B}
    tls-mx      IN A    {MX_TLS}
    lmtp-mx     IN A    {MX_LMTP}
    tls-wrong-mx  IN A  {MX_TLS_WRONG}
    tls-broken-mx IN A  {MX_TLS_BROKEN}
    ; mail for these domains goes to mx1 (several names: each test its own)
    a           IN MX 10 mx1
    deliv       IN MX 10 mx1
    retry       IN MX 10 mx1
    maxretries  IN MX 10 mx1
    expire      IN MX 10 mx1
    neverretry  IN MX 10 mx1
    batch       IN MX 10 mx1
    restart     IN MX 10 mx1
    bytes       IN MX 10 mx1
    suspend     IN MX 10 mx1
    bulk        IN MX 10 mx1
    limits      IN MX 10 mx1
    shared1     IN MX 10 mx1
    shared2     IN MX 10 mx1
    routed      IN MX 10 mx1
    gw          IN MX 10 mx1
    lmtp        IN MX 10 lmtp-mx
    b           IN MX 10 mx-b
    ; the sender's domain: bounces go to its own MX
    sender      IN MX 10 mx-sender
    ; MX preference: mx1 (10) before mx2 (20)
    pref        IN MX 20 mx2
    pref        IN MX 10 mx1
    ; the best MX refuses connections (nothing listens on dead-mx)
    fallback    IN MX 10 dead-mx
    fallback    IN MX 20 mx2
    ; the best MX answers 421 (mx3 greets with 421 in that test)
    busy        IN MX 10 mx3
    busy        IN MX 20 mx2
    ; equal preferences
    equal       IN MX 10 mx1
    equal       IN MX 10 mx2
    ; no MX: the A record is the implicit MX
    implicit    IN A    {IMPLICIT}
    ; RFC 7505 null MX
    nullmx      IN MX 0 .
    nullmx      IN A    {MX1}
    ; TLS
    tls         IN MX 10 tls-mx
    tls2        IN MX 10 tls-mx
    tlswrong    IN MX 10 tls-wrong-mx
    tlsbroken   IN MX 10 tls-broken-mx
    ; "nosuch.example.test" does not exist: NXDOMAIN
    """)


class Nsd:
    def __init__(self, workdir, zones):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.zones = dict(zones)
        self.port = None
        self.pid = None
        self.resolv_conf = self.dir / "resolv.conf"

    def _write(self):
        zone_blocks = []
        for name, text in self.zones.items():
            (self.dir / f"{name}.zone").write_text(text)
            zone_blocks.append(f"zone:\n    name: {name}\n    zonefile: {name}.zone\n")
        d = self.dir
        (d / "nsd.conf").write_text(textwrap.dedent(f"""\
            server:
                ip-address: 127.0.0.1@{self.port}
                port: {self.port}
                username: ""
                chroot: ""
                zonesdir: "{d}"
                database: ""
                pidfile: "{d}/nsd.pid"
                xfrdfile: "{d}/xfrd.state"
                zonelistfile: "{d}/zone.list"
                logfile: "{d}/nsd.log"
                server-count: 1
                verbosity: 1
            remote-control:
                control-enable: no
            """) + "".join(zone_blocks))
        self.resolv_conf.write_text(f"nameserver 127.0.0.1:{self.port}\n")

    def start(self):
        for _ in range(5):
            self.port = self._free_udp_tcp_port()
            self._write()
            pidfile = self.dir / "nsd.pid"
            if pidfile.exists():
                pidfile.unlink()
            r = subprocess.run(["nsd", "-c", str(self.dir / "nsd.conf"), "-P", str(pidfile)],
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                continue
            try:
                wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=10,
                         what="nsd pid file")
            except AssertionError:
                continue
            self.pid = int(pidfile.read_text().strip())
            try:
                wait_for(self._answers, timeout=10, what="nsd answering")
                return self
            except AssertionError:
                self.stop()
        raise RuntimeError(f"nsd did not start: {(self.dir / 'nsd.log').read_text() if (self.dir / 'nsd.log').exists() else ''}")

    @staticmethod
    def _free_udp_tcp_port():
        while True:
            port = free_port()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port

    def _answers(self):
        zone = next(iter(self.zones))
        try:
            self.query(zone, "SOA")
            return True
        except Exception:
            return False

    def query(self, name, rtype):
        import dns.message
        import dns.query
        q = dns.message.make_query(name, rtype)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=2)

    def alive(self):
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self):
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            # NSD's children may leave it a zombie only if we were its parent; it daemonizes
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


_shared = {}


@pytest.fixture(scope="session")
def nsd_server(tmp_path_factory):
    """NSD serving EXAMPLE_TEST_ZONE on 127.0.0.1:<free port>, one for the whole run.

    Each test module imports this fixture, which gives each module its own fixture
    definition; the first one to run starts NSD and stops it at the end of the session,
    the others share it."""
    ns = _shared.get("nsd")
    if ns is not None and ns.alive():
        yield ns
        return
    ns = Nsd(tmp_path_factory.mktemp("nsd"), {"example.test": EXAMPLE_TEST_ZONE}).start()
    _shared["nsd"] = ns
    yield ns
    _shared.pop("nsd", None)
    ns.stop()
