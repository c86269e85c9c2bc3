"""celerd -t / --check-config and --dump-config, as an operator runs them.

Each malformed configuration must fail with exit status 1 and name the exact
file:line:column of the problem; a Momentum configuration must load, with a
warning for each option celer does not implement yet.
"""
import pathlib
import re
import textwrap

import pytest

from conftest import run_celerd

CONFIGS = pathlib.Path(__file__).parent / "configs"


def check(tmp_path, text, name="c.conf", extra_files=None):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    for rel, content in (extra_files or {}).items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return path, run_celerd("-t", "-c", str(path))


def test_momentum_sample_config_passes_with_warnings():
    res = run_celerd("-t", "-c", str(CONFIGS / "momentum-sample.conf"))
    assert res.returncode == 0, res.stderr
    assert "configuration OK" in res.stderr
    # unimplemented options and modules are named, not silently dropped
    assert re.search(r'momentum-sample.conf:\d+:\d+: warning: option "server_max_outbound_connections" '
                     r'is a Momentum option celer does not implement yet', res.stderr) or \
        'server_max_outbound_connections' not in res.stderr
    assert 'module "dkim_sign" is a Momentum module celer does not implement yet' in res.stderr
    assert ": error:" not in res.stderr


def test_dump_shows_group_throttle_shared_by_binding():
    res = run_celerd("--dump-config", "-c", str(CONFIGS / "momentum-sample.conf"))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    group = out[out.index('Binding_Group "customer-a" {'):]
    group_line = next(l for l in group.splitlines() if l.strip().startswith("outbound_throttle_messages"))
    bucket = re.search(r"throttle bucket #(\d+)", group_line).group(1)
    a_ip1 = group[group.index('Binding "a-ip1" {'):]
    a_ip1 = a_ip1[:a_ip1.index("}")]
    line = next(l for l in a_ip1.splitlines() if "outbound_throttle_messages" in l)
    assert '"600/60"' in line
    assert 'from binding_group "customer-a"' in line
    assert f"throttle bucket #{bucket} shared by reference" in line
    # the sibling binding shares the same bucket
    a_ip2 = group[group.index('Binding "a-ip2" {'):]
    a_ip2 = a_ip2[:a_ip2.index("}")]
    assert f"throttle bucket #{bucket} shared by reference" in a_ip2
    # implicit default binding and group are shown
    assert 'Binding "default" {  # implicit' in out
    assert 'Binding_Group "default" {  # implicit' in out
    # domain fallback: a binding's domain stanza overrides the binding
    trans = out[out.index('Binding "transactional" {'):]
    gmail = trans[trans.index('Domain "gmail.com" {'):]
    gmail = gmail[:gmail.index("}")]
    assert re.search(r"max_outbound_connections = 40\s+# .*momentum-sample.conf:\d+", gmail)
    assert re.search(r"message_expiration = 3600\s+# from binding \"transactional\"", gmail)


BAD = [
    # (config text, line, column, message fragment)
    ("Max_Outbound_Connections = 32\nMax_Outbund_Connections = 3\n", 2, 1,
     'unknown option "Max_Outbund_Connections" (did you mean "max_outbound_connections"?)'),
    ("Binding \"b\" {\n  Relay_Hosts = ( \"10.0.0.0/8\" )\n}\n", 2, 3,
     'option "relay_hosts" is not valid in binding scope'),
    ("Force_Fsync = maybe\n", 1, 15, 'expected a boolean'),
    ("Retry_Interval = soon\n", 1, 18, "expected a number of seconds"),
    ("TLS = sometimes\n", 1, 7, "expected one of no/ifavailable/required"),
    ("Relay_Hosts = ( \"10.0.0.0/33\" )\n", 1, 15, "is not an IP address or CIDR block"),
    ("Binding \"has space\" { }\n", 1, 9, "must be non-empty without spaces or colons"),
    ("Domain \"/(unclosed/\" { }\n", 1, 8, "bad regular expression"),
    ("ESMTP_Listener {\n  Listen \"127.0.0.1\" { }\n}\n", 2, 10, "listen address"),
    ("ESMTP_Listener \"x\" { }\n", 1, 16, "takes no name"),
    ("Binding { }\n", 1, 1, "Binding scope needs a name"),
    ("Bindin \"b\" { }\n", 1, 1, 'unknown scope or module "Bindin" (did you mean "Binding"?)'),
    ("Domain \"x\" {\n  Binding \"b\" { }\n}\n", 2, 3, 'cannot appear inside domain scope'),
    ("Spoolbase = \"/x\"\nBinding \"b\" {\n", 2, 13, "'{' is never closed"),
    ("}\n", 1, 1, "unmatched '}'"),
    ("Hostname = \"unterminated\n", 1, 12, "unterminated string"),
    ("/* open comment\nHostname = x\n", 1, 1, "unterminated /* comment"),
    ("Hostname \"x\" = y\n", 1, 14, "expected '{' after the scope name"),
    ("Relay_Hosts = ( \"1.2.3.4\" \n", 2, 1, "expected a value"),
    ("ESMTP_Listener {\n  Listen \":2525\" { Pathway = \"nope\" }\n}\n", 2, 30, 'pathway "nope" is not declared'),
    ("Binding_Group \"g\" { Binding \"b\" { } }\nBinding \"b\" { }\n", 2, 1, 'binding "b" is already declared'),
    ("Outbound_Throttle_Messages = \"10/0\"\n", 1, 30, "expected a throttle"),
]


@pytest.mark.parametrize("text,line,col,fragment", BAD)
def test_malformed_config_names_file_line_column(tmp_path, text, line, col, fragment):
    path, res = check(tmp_path, text)
    assert res.returncode == 1, res.stderr
    expected = f"{path}:{line}:{col}: error: "
    lines = [l for l in res.stderr.splitlines() if l.startswith(expected)]
    assert any(fragment in l for l in lines), f"want {expected}...{fragment}\ngot:\n{res.stderr}"
    assert "error" in res.stderr.splitlines()[-1]


def test_several_errors_reported_in_one_run(tmp_path):
    path, res = check(tmp_path, """\
        Max_Retris = 3
        Force_Fsync = perhaps
        Binding "b" { Relay_Hosts = ( "1.2.3.4" ) }
        """)
    assert res.returncode == 1
    errors = [l for l in res.stderr.splitlines() if ": error: " in l]
    assert [l.split(": error:")[0] for l in errors] == [f"{path}:1:1", f"{path}:2:15", f"{path}:3:15"]
    assert "3 errors" in res.stderr


def test_include_file_and_directory_in_lexical_order(tmp_path):
    path, res = check(tmp_path, """\
        include "conf.d"
        Binding "b1" { include "b1-extra.conf" }
        """, extra_files={
        "conf.d/20-second.conf": 'Retry_Interval = 300\n',
        "conf.d/10-first.conf": 'Retry_Interval = 100\nMax_Retry_Interval = 900\n',
        "conf.d/.hidden.conf": 'this is not valid config at all {{{\n',
        "b1-extra.conf": 'EHLO_Hostname = "b1.example"\n',
    })
    assert res.returncode == 0, res.stderr
    # 20-second.conf comes after 10-first.conf, so its value wins (with a warning)
    assert "conf.d/20-second.conf:1:1: warning: option \"retry_interval\" is set again" in res.stderr
    dump = run_celerd("--dump-config", "-c", str(path)).stdout
    assert re.search(r"retry_interval = 300\s+# .*20-second.conf:1", dump)
    assert re.search(r'ehlo_hostname = "b1.example"\s+# .*b1-extra.conf:1', dump)


def test_include_cycle_is_an_error(tmp_path):
    path, res = check(tmp_path, 'include "a.conf"\n', extra_files={
        "a.conf": 'include "b.conf"\n', "b.conf": 'Hostname = "x"\ninclude "a.conf"\n'})
    assert res.returncode == 1
    assert re.search(rf"{tmp_path}/b.conf:2:9: error: include cycle", res.stderr), res.stderr


def test_error_in_included_file_names_that_file(tmp_path):
    path, res = check(tmp_path, 'Hostname = "x"\ninclude "sub/bad.conf"\n',
                      extra_files={"sub/bad.conf": "\n\n  Force_Fsync = sometimes\n"})
    assert res.returncode == 1
    assert f"{tmp_path}/sub/bad.conf:3:17: error: option \"force_fsync\": expected a boolean" in res.stderr


def test_same_scope_repeated_merges(tmp_path):
    path, res = check(tmp_path, """\
        Binding_Group "g" { Binding "b1" { Bind_Address = "192.0.2.1" } }
        Binding_Group "g" { Binding "b2" { } Outbound_Throttle_Messages = "5/10" }
        """)
    assert res.returncode == 0, res.stderr
    dump = run_celerd("--dump-config", "-c", str(path)).stdout
    assert dump.count('Binding_Group "g" {') == 1
    b1 = dump[dump.index('Binding "b1" {'):]
    assert 'outbound_throttle_messages = "5/10"' in b1[:b1.index("}")]


def test_lenient_booleans_and_octal(tmp_path):
    for word in ["true", "On", "yes", "ENABLED", "1"]:
        path, res = check(tmp_path, f"Force_Fsync = {word}\nSpool_Mode = 0640\n")
        assert res.returncode == 0, (word, res.stderr)
        dump = run_celerd("--dump-config", "-c", str(path)).stdout
        assert re.search(r"force_fsync = \S+\s+# ", dump)


def test_regex_domains_after_exact_in_declaration_order(tmp_path):
    path, res = check(tmp_path, """\
        Domain "/^mx[0-9]\\.example$/" { Max_Outbound_Connections = 1 }
        Domain "/example$/" { Max_Outbound_Connections = 2 }
        Domain "mx1.example" { Max_Outbound_Connections = 3 }
        """)
    assert res.returncode == 0, res.stderr


def test_missing_config_file(tmp_path):
    res = run_celerd("-t", "-c", str(tmp_path / "nope.conf"))
    assert res.returncode == 1
    assert "cannot read" in res.stderr and "nope.conf" in res.stderr
