# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_fileio: only regular files are read, never with a blocking open, and never past their cap; command outputs
are read to a cap and within a time limit; the collectors read every source of a layer on its own (issue #14 items
5, 6 and 9), against real files, FIFOs, devices and sockets in a temporary directory and copies of the procfs
fixture trees."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest

from ansible_collections.netdiag.packetloss.plugins.module_utils._common import fileio as _fileio
from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import Collector
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import _run_all
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import TargetError, netns_target
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import FIXTURES


@pytest.fixture(autouse=True)
def alarm() -> Iterator[None]:
    """A test that blocks (the bug these tests guard against) fails after 20 s instead of hanging the suite."""
    def expired(_signum: int, _frame: Any) -> None:
        raise AssertionError("blocked for 20 s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def special(tmp_path: Any, kind: str, name: str = "") -> str:
    """A path of tmp_path (named ``name``, else ``kind``) that is no regular file: a FIFO, a directory, a symlink to
    /dev/zero or a socket."""
    path = os.path.join(str(tmp_path), name or kind)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        os.mkdir(path)
    elif kind == "devzero":
        os.symlink("/dev/zero", path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.close()
    return path


@pytest.mark.parametrize("kind, what", [("fifo", "is a FIFO (named pipe)"), ("dir", "is a directory"),
                                        ("devzero", "is a character device"), ("socket", "is a socket")])
def test_only_a_regular_file_is_read(tmp_path: Any, kind: str, what: str) -> None:
    path = special(tmp_path, kind)
    for call in (lambda: _fileio.read_bytes(path, 100), lambda: _fileio.head(path, 10), lambda: _fileio.open_checked(path)):
        with pytest.raises(_fileio.InputError) as info:
            call()
        assert str(info.value) == "%s: %s, not a regular file: refused" % (path, what)


def test_missing_and_unreadable(tmp_path: Any) -> None:
    with pytest.raises(_fileio.InputError, match="does not exist$"):
        _fileio.read_bytes(str(tmp_path / "nope"), 10)
    dangling = str(tmp_path / "dangling")
    os.symlink(str(tmp_path / "nope"), dangling)
    with pytest.raises(_fileio.InputError, match="does not exist$"):
        _fileio.read_bytes(dangling, 10)


def test_cap_of_a_regular_file(tmp_path: Any) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert _fileio.read_bytes(str(path), 100) == b"x" * 100
    with pytest.raises(_fileio.InputError) as info:
        _fileio.read_bytes(str(path), 99)
    assert str(info.value) == "%s: is 100 bytes, more than the 99 bytes this input may have: refused" % path


def test_cap_of_a_procfs_file_whose_size_is_zero() -> None:
    """procfs reports st_size 0: the cap holds while reading."""
    assert os.stat("/proc/self/mountinfo").st_size == 0
    assert _fileio.read_bytes("/proc/self/mountinfo", _fileio.PROC_MAX).startswith(b"")
    with pytest.raises(_fileio.InputError, match="holds more than the 10 bytes this input may have: refused"):
        _fileio.read_bytes("/proc/self/mountinfo", 10)


def test_reading_the_live_procfs_files() -> None:
    for rel in ("net/dev", "net/snmp", "net/softnet_stat"):
        assert _fileio.read_text("/proc/" + rel, _fileio.PROC_MAX)


def test_the_caps_are_ordered_and_documented() -> None:
    assert _fileio.STDERR_MAX < min(_fileio.PROC_MAX, _fileio.TC_MAX) and max(_fileio.PROC_MAX, _fileio.TC_MAX) <= _fileio.RULESET_MAX
    doc = _fileio.__doc__ or ""
    for name, value in (("PROC_MAX", _fileio.PROC_MAX), ("TC_MAX", _fileio.TC_MAX), ("RULESET_MAX", _fileio.RULESET_MAX)):
        assert "``%s`` (%s)" % (name, _fileio.size_text(value)) in doc


# ---- command outputs ------------------------------------------------------------------------------

def popen(code: str) -> "subprocess.Popen[bytes]":
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_run_bounded_reads_each_output_to_its_cap_and_in_time() -> None:
    started = time.monotonic()
    procs = [popen("import sys; sys.stdout.write('a' * 5000); sys.stderr.write('e' * 100000)"),
             popen("import sys\nwhile True: sys.stdout.write('b' * 65536)"),  # endless: killed at the cap
             popen("import time; time.sleep(60)"),  # silent and slow: killed at the deadline
             popen("import sys; print('ok'); sys.exit(3)")]
    ok, endless, slow, failed = _fileio.run_bounded(procs, 10000, 3)
    assert time.monotonic() - started < 10
    assert (ok.out, ok.problem, ok.returncode, len(ok.err)) == (b"a" * 5000, None, 0, _fileio.STDERR_MAX)
    assert endless.out is None and endless.problem == "printed more than 10000 bytes: not read (the cap of this input)"
    assert slow.out is None and slow.problem == "did not finish within 3 s: not read"
    assert (failed.out, failed.returncode, failed.problem) == (b"ok\n", 3, None)
    assert all(p.poll() is not None for p in procs)


def test_run_all_notes_what_it_could_not_read(monkeypatch: Any) -> None:
    monkeypatch.setattr(_fileio, "RULESET_MAX", 1000)
    py = sys.executable
    jobs = [("save", "ipv4", "x", [py, "-c", "print('x' * 2000)"]), ("save", "ipv4", "y", [py, "-c", "print('fine')"]),
            ("save", "ipv4", "z", ["/nonexistent/iptables-save"]),
            ("save", "ipv4", "w", [py, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(2)"])]
    unread: list = []
    out = list(_run_all(jobs, unread))
    assert [(job[2], text) for job, text in out] == [("y", "fine\n")]
    assert [(u["backend"], u["cause"], u["reason"]) for u in unread] == [
        ("z", "missing_binary", "/nonexistent/iptables-save is not installed (not found in PATH)"),
        ("x", "unreadable", "%s -c print('x' * 2000) printed more than 1000 bytes: not read (the cap of this input)" % py),
        ("w", "unreadable", "%s -c import sys; sys.stderr.write('boom\\n'); sys.exit(2) failed (exit 2): boom" % py)]


# ---- netns given as a path ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "dir", "devzero", "socket"])
def test_netns_path_that_is_not_a_file_is_refused_without_blocking(tmp_path: Any, kind: str) -> None:
    path = special(tmp_path, kind)
    with pytest.raises(TargetError) as info:
        netns_target(path)
    assert str(info.value).startswith("cannot use %s as the network namespace of netns:%s: is a" % (path, path))


def test_netns_path_that_is_no_namespace(tmp_path: Any) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(TargetError, match="is not a namespace file"):
        netns_target(str(plain))
    with pytest.raises(TargetError, match="is a namespace of another type"):
        netns_target("/proc/self/ns/uts")
    assert netns_target("/proc/self/ns/net").ns_path == "/proc/self/ns/net"


# ---- per-source independence: copied /proc trees with pieces missing or broken ----------------------

PROMETHEUS = os.path.join(FIXTURES, "procfs", "prometheus_procfs", "proc")


def tree(tmp_path: Any) -> str:
    """node_exporter's fixture tree as a copied /proc: net/{dev,snmp,netstat,snmp6} of process 26231, softnet_stat,
    nf_conntrack stat (17 columns) and the three sysctls."""
    root = tmp_path / "proc"
    shutil.copytree(os.path.join(PROMETHEUS, "26231", "net"), str(root / "net"))
    shutil.copyfile(os.path.join(PROMETHEUS, "net", "softnet_stat"), str(root / "net" / "softnet_stat"))
    (root / "net" / "stat").mkdir()
    shutil.copyfile(os.path.join(FIXTURES, "procfs", "prometheus_procfs_inline", "case_new_format", "proc", "net", "stat",
                                 "nf_conntrack"), str(root / "net" / "stat" / "nf_conntrack"))
    (root / "sys" / "net" / "netfilter").mkdir(parents=True)
    for key, value in (("count", "900\n"), ("max", "1000\n"), ("buckets", "256\n")):
        (root / "sys" / "net" / "netfilter" / ("nf_conntrack_" + key)).write_text(value)
    return str(root)


def collect(root: str, layers: Any = ("netstat", "conntrack")) -> Any:
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import HOST
    return Collector(proc_root=root).collect(HOST, list(layers))


def test_whole_tree_is_read(tmp_path: Any) -> None:
    root = tree(tmp_path)
    out = collect(root)
    net, ct = out["netstat"], out["conntrack"]
    assert net["available"] and all(s["read"] for s in net["sources"].values()), net["sources"]
    assert set(net["sources"]) == {"interfaces", "snmp", "netstat", "snmp6", "softnet"}
    assert net["sources"]["interfaces"]["lacks"] == list(__import__(
        "ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector", fromlist=["NETLINK_ONLY"]).NETLINK_ONLY)
    assert net["ipv6"] and net["softnet"] and "TcpExt" in net["snmp"] and "Ip6" in net["snmp"]
    assert ct["usage_percent"] == 90.0 and ct["stat"]["total"] and all(s["read"] for s in ct["sources"].values())
    assert out["warnings"] == []


def test_missing_net_dev_loses_only_the_interfaces(tmp_path: Any) -> None:
    """Issue #14 item 9: no net/dev, and the rest of the netstat layer is still there."""
    root = tree(tmp_path)
    os.unlink(os.path.join(root, "net", "dev"))
    out = collect(root)
    net = out["netstat"]
    assert net["available"] and net["interfaces"] is None
    assert net["sources"]["interfaces"] == {"path": os.path.join(root, "net", "dev"), "read": False,
                                            "reason": "%s: does not exist" % os.path.join(root, "net", "dev")}
    assert [n for n, s in net["sources"].items() if not s["read"]] == ["interfaces"]
    assert net["snmp"]["Tcp"] and net["snmp"]["TcpExt"] and net["snmp"]["Ip6"] and net["softnet"]
    assert out["warnings"] == ["netstat: interfaces not read: %s: does not exist" % os.path.join(root, "net", "dev")]


@pytest.mark.parametrize("rel, kind", [("net/snmp", "fifo"), ("net/softnet_stat", "devzero"), ("net/netstat", "dir"),
                                       ("net/snmp6", "broken"), ("net/softnet_stat", "huge")])
def test_one_broken_source_of_netstat(tmp_path: Any, rel: str, kind: str) -> None:
    """Issue #14 items 6 and 5: a FIFO (it hung), a symlink to /dev/zero (it read until memory ran out), a
    directory, garbage, a 4000-digit hex field: that source is not read, with its path and reason; the rest is."""
    root = tree(tmp_path)
    path = os.path.join(root, rel)
    os.unlink(path)
    if kind in ("fifo", "devzero", "dir"):
        assert special(os.path.dirname(path), kind, os.path.basename(path)) == path
    elif kind == "broken":
        with open(path, "w") as handle:
            handle.write("Ip6InReceives\n")
    else:
        with open(path, "w") as handle:
            handle.write(" ".join(["f" * 4000] + ["0"] * 12) + "\n")
    net = collect(root, ["netstat"])["netstat"]
    name = {"net/snmp": "snmp", "net/softnet_stat": "softnet", "net/netstat": "netstat", "net/snmp6": "snmp6"}[rel]
    assert net["available"]
    assert [n for n, s in net["sources"].items() if not s["read"]] == [name]
    assert net["sources"][name]["path"] == path and path in net["sources"][name]["reason"]
    assert net["interfaces"]
    __import__("json").dumps(net)


def test_nothing_readable_is_an_unavailable_layer_with_its_sources(tmp_path: Any) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    net = collect(str(root), ["netstat"])["netstat"]
    assert not net["available"] and net["reason"].startswith("no source of the netstat layer could be read: ")
    assert set(net["sources"]) == {"interfaces", "snmp", "netstat", "snmp6", "softnet"}
    assert not any(s["read"] for s in net["sources"].values())


@pytest.mark.parametrize("kind", ["dir", "fifo", "garbage", "missing"])
def test_conntrack_count_unreadable(tmp_path: Any, kind: str) -> None:
    """Issue #14 item 5: nf_conntrack_count unreadable or a directory gave a TypeError (usage_percent with None)."""
    root = tree(tmp_path)
    path = os.path.join(root, "sys", "net", "netfilter", "nf_conntrack_count")
    os.unlink(path)
    if kind == "dir":
        os.mkdir(path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "garbage":
        with open(path, "w") as handle:
            handle.write("lots\n")
    ct = collect(root, ["conntrack"])["conntrack"]
    assert ct["available"] and ct["loaded"] and ct["count"] is None and ct["usage_percent"] is None
    assert ct["max"] == 1000 and ct["stat"]["total"]
    assert [n for n, s in ct["sources"].items() if not s["read"]] == ["count"]


def test_conntrack_absent_from_a_copied_tree_is_not_read_not_unloaded(tmp_path: Any) -> None:
    root = tree(tmp_path)
    shutil.rmtree(os.path.join(root, "sys"))
    os.unlink(os.path.join(root, "net", "stat", "nf_conntrack"))
    ct = collect(root, ["conntrack"])["conntrack"]
    assert not ct["available"] and "nf_conntrack was not loaded there, or these files were not copied" in ct["reason"]


def test_tc_from_a_copied_tree_says_netlink_only(tmp_path: Any) -> None:
    tc = collect(tree(tmp_path), ["tc"])["tc"]
    assert not tc["available"] and "over netlink only" in tc["reason"]
