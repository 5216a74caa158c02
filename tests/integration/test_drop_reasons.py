"""The drop_reasons layer on this machine's real kernel: drops made in namespaces we create, read back as the kernel's
drop reasons (through packetloss_facts run by ansible), turned into findings; and the system left as found when the
module is killed mid-interval (SIGTERM, SIGKILL) or the next run has to clean up after a killed one.

The tracepoint is host-wide: other work on the machine adds events, so counts are asserted as lower bounds.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest

from conftest import COLLECTIONS, facts_of, run_module, sh

sys.path.insert(0, COLLECTIONS)
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import dropreasons as _dropreasons  # noqa: E402

TRACEFS = _dropreasons.TRACEFS
WAIT = 60.0  # the longest any wait here lasts (a loaded 2-CPU machine)

# traffic inside the namespace until killed (at most 120 s): UDP to a port a DROP rule drops, to a closed port, and to
# a socket with a tiny receive buffer that never reads
TRAFFIC = r"""
import socket, time
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
r.bind(("127.0.0.1", 5002))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 120
print("ready", flush=True)
while time.time() < end:
    for port in (5001, 9, 5002):
        for _ in range(20):
            s.sendto(b"x" * 200, ("127.0.0.1", port))
    time.sleep(0.05)
"""


def mounted() -> bool:
    return _dropreasons.is_mounted(TRACEFS)


def ours() -> List[str]:
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(TRACEFS, "instances", _dropreasons.PREFIX + "*")))


def wait_for(what: str, cond: Any, seconds: float = WAIT) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("%s: not within %s s" % (what, seconds))


@pytest.fixture
def as_found() -> Iterator[bool]:
    """The tracefs mount state before the test, asserted unchanged (and no instance of ours left) after it."""
    before = mounted()
    assert not ours() or not before, "instances of netdiag left over before the test: %s" % ours()
    yield before
    assert mounted() == before, "tracefs mount state changed: %s before, %s after" % (before, mounted())
    if mounted():
        assert ours() == [], "tracing instances left: %s" % ours()


@pytest.fixture
def traffic(netns: str) -> Iterator[str]:
    sh("iptables", "-A", "INPUT", "-p", "udp", "--dport", "5001", "-j", "DROP", ns=netns)
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", TRAFFIC], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield netns
    finally:
        proc.kill()
        proc.wait(WAIT)


def _events(layer: Dict[str, Any]) -> Dict[Any, int]:
    out: Dict[Any, int] = {}
    for e in layer["events"]:
        out[(e["reason"], e["location"])] = out.get((e["reason"], e["location"]), 0) + e["count"]
    return out


def test_kernel_drop_reasons_of_real_drops_become_findings(traffic: str, as_found: bool) -> None:
    res = run_module("packetloss_facts", interval=3, namespaces=[traffic], gather_subset=["netstat", "iptables", "drop_reasons"],
                     containers=["none"])
    facts = facts_of(res)
    layer = facts["drop_reasons"]
    assert layer["available"] is True and layer["scope"] == "host", layer
    assert layer["method"] in ("hist", "buffer") and layer["reasons_named"] is True
    assert layer["mounted"] is (not as_found)
    assert facts["targets"]["netns:" + traffic]["drop_reasons"] == {"available": True, "scope": "host", "recorded_with": "host"}
    before = res["ansible_facts"]["packetloss_before"]
    assert before["drop_reasons"]["state"] == "recording"
    ev = _events(layer)
    netfilter = sum(n for (r, l), n in ev.items() if r == "NETFILTER_DROP" and l in ("nft_do_chain", "nf_hook_slow", "ipt_do_table"))
    assert netfilter >= 20, ev
    assert ev.get(("NO_SOCKET", "__udp4_lib_rcv"), 0) >= 20, ev
    assert ev.get(("SOCKET_RCVBUFF", "udp_queue_rcv_one_skb"), 0) >= 20, ev
    assert layer["total"] >= sum(ev.values())

    findings = _analyze.analyze_host(before["targets"], facts["targets"], None)
    by = dict(((f["id"], f["subject"]), f) for f in findings)
    nf = by[("netfilter.drop_reason", "drop reason NETFILTER_DROP")]
    # the namespace's DROP rule counted hits, and no other target's did: the finding is the namespace's
    assert nf["target"] == "netns:" + traffic and nf["evidence"]["scope"] == "target", nf
    assert "netfilter.drop_hits" in [c["id"] for c in nf["evidence"]["corroborated_by"]]
    assert nf["severity"] == "warning" and nf["summary"].startswith("NETFILTER_DROP x ")
    rcv = by[("socket.drop_reason", "drop reason SOCKET_RCVBUFF")]
    assert rcv["target"] == "netns:" + traffic and rcv["severity"] == "critical", rcv
    assert "udp.rcvbuf_errors" in [c["id"] for c in rcv["evidence"]["corroborated_by"]]
    nosock = by[("socket.no_listener", "drop reason NO_SOCKET")]
    assert nosock["severity"] == "warning" and "at __udp4_lib_rcv" in nosock["summary"]


def _start(args: Dict[str, Any], user: Optional[str] = None) -> subprocess.Popen:
    """packetloss_facts as Ansible starts it on a target: python, the module, its arguments file."""
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, f)
    os.chmod(path, 0o644)
    argv = [sys.executable, "-m", "ansible_collections.netdiag.packetloss.plugins.modules.packetloss_facts", path]
    if user:
        argv = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", "--inh-caps=-all"] + argv
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                            env=dict(os.environ, PYTHONPATH=COLLECTIONS))


def _instance_of(proc: subprocess.Popen) -> str:
    prefix = "%s%d-" % (_dropreasons.PREFIX, proc.pid)
    return wait_for("the module's tracing instance", lambda: [n for n in ours() if n.startswith(prefix)] or (
        proc.poll() is not None and pytest.fail("the module ended early: %s" % (proc.communicate(),))))[0]


def _children(pid: int) -> List[int]:
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_module_stopped_mid_interval_leaves_the_system_as_found(sig: int, as_found: bool) -> None:
    proc = _start({"interval": 600, "gather_subset": ["drop_reasons"]})
    try:
        name = _instance_of(proc)
        proc.send_signal(sig)
        proc.wait(WAIT)
        assert name not in ours()
        assert mounted() == as_found
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)


def test_a_killed_module_is_cleaned_up_by_its_watchdog(as_found: bool) -> None:
    proc = _start({"interval": 600, "gather_subset": ["drop_reasons"]})
    try:
        name = _instance_of(proc)
        assert _children(proc.pid), "no watchdog process"
        proc.kill()
        proc.wait(WAIT)
        wait_for("the instance removed after SIGKILL", lambda: name not in ours())
        wait_for("tracefs as found after SIGKILL", lambda: mounted() == as_found)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)


def test_the_next_run_removes_the_instance_of_a_run_killed_with_its_watchdog(as_found: bool) -> None:
    """SIGKILL of the module and its watchdog at once (a container or cgroup killed): the instance is left; the next
    run removes it (its process is gone) and says so in stale_removed."""
    proc = _start({"interval": 600, "gather_subset": ["drop_reasons"]})
    try:
        name = _instance_of(proc)
        watchdogs = _children(proc.pid)
        assert watchdogs
        for pid in watchdogs:
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(WAIT)
        time.sleep(0.5)
        assert name in ours(), "the instance should be left by a run killed with its watchdog"
        if not as_found:
            # the killed run mounted tracefs and could not unmount it: the next run finds it mounted and does not
            # unmount what it did not mount; the test restores the machine itself after the check
            pass
        res = run_module("packetloss_facts", interval=1, gather_subset=["drop_reasons"], containers=["none"])
        layer = facts_of(res)["drop_reasons"]
        assert name in layer["stale_removed"] and name not in ours(), layer
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
        for n in ours():
            if n == locals().get("name"):
                _dropreasons.remove_instance(os.path.join(TRACEFS, "instances", n))
        if not as_found and mounted():
            sh("umount", TRACEFS)


def test_without_root_the_layer_says_why_and_the_others_are_read(as_found: bool) -> None:
    proc = _start({"interval": 1, "gather_subset": ["netstat", "drop_reasons"]}, user="65534")
    out, err = proc.communicate(timeout=WAIT)
    result = json.loads(out[out.index("{"):]) if "{" in out else pytest.fail("no result: %s %s" % (out, err))
    facts = result["ansible_facts"]["packetloss"]
    layer = facts["drop_reasons"]
    assert layer["available"] is False and layer["cause"] == "no_root" and layer["offered"] is True, layer
    assert "root" in layer["reason"]
    assert facts["netstat"]["available"] is True and facts["netstat"]["snmp"]["Udp"]
    assert any("drop_reasons not recorded" in w for w in facts["warnings"])


def test_one_snapshot_or_a_copied_proc_does_not_offer_the_layer(as_found: bool) -> None:
    facts = facts_of(run_module("packetloss_facts", gather_subset=["drop_reasons"], containers=["none"]))
    assert facts["drop_reasons"]["available"] is False and facts["drop_reasons"]["cause"] == "no_interval"
    assert facts["drop_reasons"]["offered"] is False and facts["warnings"] == []
    facts = facts_of(run_module("packetloss_facts", gather_subset=["drop_reasons"], proc_root="/proc"))
    assert facts["drop_reasons"]["cause"] == "not_live"


def test_a_tracefs_mounted_before_stays_mounted(as_found: bool) -> None:
    if not as_found:
        sh("mount", "-t", "tracefs", "nodev", TRACEFS)
    try:
        res = run_module("packetloss_facts", interval=1, gather_subset=["drop_reasons"], containers=["none"])
        layer = facts_of(res)["drop_reasons"]
        assert layer["available"] is True and layer["mounted"] is False
        assert mounted() and ours() == []
    finally:
        if not as_found:
            sh("umount", TRACEFS)


def test_diagnose_records_drop_reasons_by_default_and_drop_reasons_false_turns_them_off(traffic: str, as_found: bool) -> None:
    on = run_module("diagnose", interval=2, containers=["none"], namespaces=[traffic])
    assert not on.get("failed"), on.get("msg")
    ids = [f["id"] for f in on["ansible_facts"]["packetloss_findings"]]
    assert "netfilter.drop_reason" in ids and "socket.drop_reason" in ids, ids
    off = run_module("diagnose", interval=2, containers=["none"], namespaces=[traffic], drop_reasons=False)
    assert not off.get("failed"), off.get("msg")
    ids = [f["id"] for f in off["ansible_facts"]["packetloss_findings"]]
    assert "netfilter.drop_hits" in ids and not [i for i in ids if i.endswith(".drop_reason") or i.startswith("drops.")], ids


# ------------------------------------------------------------------------------------------------
# over two module runs: the diagnose role with probes (the first run holds the recording, the second reads it)
# ------------------------------------------------------------------------------------------------

def sockets() -> List[str]:
    return sorted(glob.glob(os.path.join(_dropreasons.SESSION_DIR, _dropreasons.PREFIX + "*.sock")))


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that completes handshakes (the kernel does, up to the backlog): probes that drop nothing."""
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


def test_diagnose_with_probes_records_drop_reasons_over_both_module_runs(traffic: str, listener: int, as_found: bool) -> None:
    before_sockets = sockets()
    res = run_module("diagnose", interval=3, containers=["none"], namespaces=[traffic],
                     probes=[{"host": "127.0.0.1", "port": listener, "count": 5, "interval": 0.05, "target": "host"}])
    assert not res.get("failed"), res.get("msg")
    diag = res["ansible_facts"]["packetloss_diagnosis"]
    assert diag["probes"][0]["sent"] == 5 and not diag["probes"][0]["failed"], diag["probes"]
    for label in ("host", "netns:" + traffic):
        assert diag["targets"][label]["layers"]["drops"]["state"] == "read", diag["targets"][label]["layers"]["drops"]
    by = dict((f["id"], f) for f in diag["findings"])
    assert "netfilter.drop_reason" in by and "socket.drop_reason" in by, sorted(by)
    nf = by["netfilter.drop_reason"]
    assert nf["target"] == "netns:" + traffic and sum(r["count"] for r in nf["evidence"]["drop_reasons"]) >= 20, nf
    # the counter finding names the kernel's reason too
    hits = [f for f in diag["findings"] if f["id"] == "netfilter.drop_hits"]
    assert hits and any(c["id"] == "netfilter.drop_reason" for c in hits[0]["evidence"]["corroborated_by"]), hits
    assert not [w for w in res.get("warnings", []) if "drop_reasons" in w], res.get("warnings")
    assert sockets() == before_sockets  # the keeper is gone with its socket


def test_a_held_recording_nobody_reads_is_removed_when_its_hold_runs_out(as_found: bool) -> None:
    held = facts_of(run_module("packetloss_facts", drop_reasons_hold=3, gather_subset=["drop_reasons"], containers=["none"]))
    layer = held["drop_reasons"]
    assert layer["available"] is True and layer["state"] == "recording", layer
    name = layer["instance"]
    assert name in ours() and os.path.exists(os.path.join(_dropreasons.SESSION_DIR, name + ".sock"))
    wait_for("the held instance removed after its hold", lambda: name not in ours())
    wait_for("its socket removed", lambda: not os.path.exists(os.path.join(_dropreasons.SESSION_DIR, name + ".sock")))
    late = facts_of(run_module("packetloss_facts", drop_reasons_instance=name, gather_subset=["drop_reasons"], containers=["none"]))
    assert late["drop_reasons"]["available"] is False and late["drop_reasons"]["cause"] == "failed", late["drop_reasons"]
    assert late["drop_reasons"]["offered"] is True and "no longer kept" in late["drop_reasons"]["reason"]
    assert any("drop_reasons not recorded" in w for w in late["warnings"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_keeper_stopped_or_killed_leaves_the_system_as_found(sig: int, as_found: bool) -> None:
    """SIGTERM: the keeper cleans up itself; SIGKILL: its watchdog removes the instance, and the next recording's start
    removes the socket it left. The second run then says the recording is gone."""
    layer = facts_of(run_module("packetloss_facts", drop_reasons_hold=600, gather_subset=["drop_reasons"],
                                containers=["none"]))["drop_reasons"]
    name, keeper = layer["instance"], layer["keeper"]
    sock = os.path.join(_dropreasons.SESSION_DIR, name + ".sock")
    assert name in ours() and os.path.exists(sock)
    os.kill(keeper, sig)
    wait_for("the instance removed after the keeper got %s" % sig, lambda: name not in ours())
    wait_for("tracefs as found", lambda: mounted() == as_found)
    late = facts_of(run_module("packetloss_facts", drop_reasons_instance=name, gather_subset=["drop_reasons"], containers=["none"]))
    assert late["drop_reasons"]["cause"] == "failed" and "no longer kept" in late["drop_reasons"]["reason"]
    if sig == signal.SIGTERM:
        assert not os.path.exists(sock)
    else:  # the next recording clears the socket a killed keeper left
        facts_of(run_module("packetloss_facts", interval=0.5, gather_subset=["drop_reasons"], containers=["none"]))
        res = run_module("packetloss_facts", drop_reasons_hold=30, gather_subset=["drop_reasons"], containers=["none"])
        again = facts_of(res)["drop_reasons"]["instance"]
        assert not os.path.exists(sock)
        resumed = facts_of(run_module("packetloss_facts", drop_reasons_instance=again, gather_subset=["drop_reasons"],
                                      containers=["none"]))["drop_reasons"]
        assert resumed["available"] is True and resumed["kept"] is True and again not in ours(), resumed
