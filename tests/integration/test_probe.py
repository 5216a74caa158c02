"""netdiag.packetloss.probe on this machine's kernel: the host lab's nginx (faults off and on) and namespaces we create."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import HOST_LAB, ROOT, run_module, sh


def _ok(result):
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["sent"] == len(result["attempts"])
    assert result["answered"] + result["lost"] == result["sent"]
    return result


@pytest.fixture
def lab_ip(host_lab):
    return sh(HOST_LAB, "ip").strip()


@pytest.mark.parametrize("mode", ["connect", "syn"])
def test_no_loss_with_faults_off(lab_ip, mode):
    r = _ok(run_module("probe", host=lab_ip, port=80, mode=mode, count=20, interval=0.02))
    assert r["loss_percent"] == 0.0 and r["open"] == 20 and r["refused"] == 0
    assert r["address"] == lab_ip and r["family"] == "ipv4" and r["mode"] == mode
    rtt = r["rtt_ms"]
    assert 0 < rtt["min"] <= rtt["p50"] <= rtt["p95"] <= rtt["max"] and rtt["min"] <= rtt["avg"] <= rtt["max"]
    assert all(a["status"] == "open" and a["reply"] == "syn-ack" for a in r["attempts"])
    assert [a["seq"] for a in r["attempts"]] == list(range(1, 21))


def test_loss_with_the_seeds_faults_on(lab_ip):
    sh(HOST_LAB, "faults", "on")
    try:
        # 40 SYNs: each is answered only if the SYN passes INPUT and the SYN-ACK passes OUTPUT (0.7 x 0.7)
        r = _ok(run_module("probe", host=lab_ip, port=80, mode="syn", count=40, interval=0.01, timeout=0.5))
        c = _ok(run_module("probe", host=lab_ip, port=80, mode="connect", count=20, interval=0.01, timeout=0.5))
    finally:
        sh(HOST_LAB, "faults", "off")
    assert 0 < r["loss_percent"] < 100, r
    assert r["lost"] == sum(1 for a in r["attempts"] if a["status"] == "timeout")
    assert all(a["rtt_ms"] is None for a in r["attempts"] if a["status"] == "timeout")
    assert 0 < c["loss_percent"] < 100, c


def test_closed_port_in_a_namespace_is_answered_by_a_reset(netns):
    addr = sh("ip", "-4", "-o", "addr", "show", "scope", "global", ns=netns).split()[3].split("/")[0]
    syn = _ok(run_module("probe", host=addr, port=9, mode="syn", count=5, interval=0.01))
    assert syn["loss_percent"] == 0.0 and syn["refused"] == 5 and syn["open"] == 0
    assert all(a["status"] == "refused" and a["reply"] == "rst" and a["rtt_ms"] > 0 for a in syn["attempts"])
    conn = _ok(run_module("probe", host=addr, port=9, mode="connect", count=5, interval=0.01))
    assert conn["loss_percent"] == 0.0 and conn["refused"] == 5
    assert all(a["status"] == "refused" for a in conn["attempts"])


def test_filtered_port_times_out_and_check_mode_probes_too(netns):
    addr = sh("ip", "-4", "-o", "addr", "show", "scope", "global", ns=netns).split()[3].split("/")[0]
    sh("iptables-nft", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "DROP", ns=netns)
    r = _ok(run_module("probe", check=True, host=addr, port=81, mode="syn", count=3, interval=0.01, timeout=0.3))
    assert r["loss_percent"] == 100.0 and r["answered"] == 0
    assert r["rtt_ms"] == {"min": None, "avg": None, "max": None, "p50": None, "p95": None}
    assert all(a["status"] == "timeout" for a in r["attempts"])


def test_open_port_on_loopback_ipv6(netns):
    server = ("import socket, time; s = socket.socket(socket.AF_INET6); s.bind(('::1', 8080)); s.listen(16); "
              "time.sleep(8)")
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "python3", "-c", server])
    try:
        sh("sh", "-c", "for i in $(seq 1 50); do ss -ltnH 'sport = :8080' | grep -q . && exit 0; sleep 0.1; done; exit 1",
           ns=netns)
        # the module runs on the host: probe the namespace's loopback from inside it with a tiny python harness
        out = sh("python3", "-c", (
            "import json, sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.netdiag.packetloss.plugins.module_utils._collect import probe as _probe\n"
            "print(json.dumps([_probe.run('::1', 8080, mode=m, count=3, interval=0.01, family='ipv6') for m in ('connect', 'syn')]))"
        ) % os.path.join(ROOT, ".ansible", "collections"), ns=netns)
    finally:
        proc.kill()
        proc.wait()
    for r in json.loads(out):
        assert r["family"] == "ipv6" and r["loss_percent"] == 0.0 and r["open"] == 3, r


@pytest.mark.parametrize("args, message", [
    (dict(host="127.0.0.1", port=0), "port must be 1-65535"),
    (dict(host="127.0.0.1", port=80, count=0), "count must be 1-10000"),
    (dict(host="127.0.0.1", port=80, timeout=0), "timeout must be 0.01-60 seconds"),
    # an IPv4 literal asked for as IPv6 fails in getaddrinfo without any DNS query
    (dict(host="127.0.0.1", port=80, family="ipv6"), "cannot resolve 127.0.0.1"),
])
def test_bad_arguments_fail_cleanly(args, message):
    r = run_module("probe", **args)
    assert r.get("failed") and message in r["msg"], r


FILTER_CHECK = r"""
import socket, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.netdiag.packetloss.plugins.module_utils._collect import probe as _probe
wanted, other = socket.socket(), socket.socket()
for s in (wanted, other):
    s.bind(("127.0.0.1", 0)); s.listen(8)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
_probe._attach_filter(raw, _probe.reply_filter("127.0.0.1", wanted.getsockname()[1], False))
raw.settimeout(0.3)
def seen():
    n = 0
    try:
        while True:
            raw.recv(65535); n += 1
    except socket.timeout:
        return n
seen()
socket.create_connection(other.getsockname()).close()
print(seen(), end=" ")
socket.create_connection(wanted.getsockname()).close()
print(seen())
"""


def test_the_raw_socket_filter_keeps_only_the_targets_segments(netns):
    """A raw TCP socket copies every segment of the host: the kernel filter must leave only the target's."""
    out = sh("python3", "-c", FILTER_CHECK, os.path.join(ROOT, ".ansible", "collections"), ns=netns).split()
    unrelated, wanted = int(out[0]), int(out[1])
    assert unrelated == 0 and wanted > 0, out
