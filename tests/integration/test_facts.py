"""The fact modules against this machine's real kernel: namespaces we create and the host lab container."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import COLLECTIONS, HOST_LAB, facts_of, hping, run_module, sh


def _random_drop_specs(facts):
    return sorted((r["family"], r["backend"], r["table"], r["chain"]) for r in facts["iptables"]["random_drop_rules"])


def test_rulesets_both_backends_both_families_and_native_nft(netns):
    sh("iptables-legacy", "-w", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.25", "-j", "DROP", ns=netns)
    sh("iptables-nft", "-w", "-A", "OUTPUT", "-p", "tcp", "-m", "statistic", "--mode", "nth", "--every", "3", "--packet", "0",
       "-j", "REJECT", ns=netns)
    sh("ip6tables-nft", "-w", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.1", "-j", "DROP", ns=netns)
    # kube-proxy's load balancing: random, but a jump, not a drop; and a plain DROP
    sh("iptables-nft", "-w", "-N", "KUBE-SEP-ABC", ns=netns)
    sh("iptables-nft", "-w", "-A", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", "0.33333333349",
       "-j", "KUBE-SEP-ABC", ns=netns)
    sh("iptables-nft", "-w", "-A", "FORWARD", "-s", "192.0.2.0/24", "-j", "DROP", ns=netns)
    sh("nft", "add table inet chaos; add chain inet chaos in { type filter hook input priority 10; }; "
       "add rule inet chaos in numgen random mod 10 < 3 counter drop", ns=netns)

    facts = facts_of(run_module("iptables_facts", netns=netns))
    ipt = facts["iptables"]
    assert ipt["available"], ipt
    assert _random_drop_specs(facts) == sorted([
        ("ipv4", "legacy", "filter", "INPUT"),
        ("ipv4", "nft", "filter", "OUTPUT"),
        ("ipv6", "nft", "filter", "INPUT"),
        ("inet", "nft-native", "chaos", "in"),
    ])
    by_chain = dict(((r["backend"], r["chain"]), r) for r in ipt["random_drop_rules"])
    assert by_chain[("legacy", "INPUT")]["statistic"]["probability"] == pytest.approx(0.25, abs=1e-6)
    assert by_chain[("nft", "OUTPUT")]["statistic"]["every"] == 3
    assert by_chain[("nft-native", "in")]["statistic"]["probability"] == pytest.approx(0.3)
    kube = [r for r in ipt["rules"] if r.get("target") == "KUBE-SEP-ABC"]
    assert len(kube) == 1 and kube[0]["random_drop"] is False and kube[0]["statistic"]["mode"] == "random"
    plain = [r for r in ipt["rules"] if r.get("chain") == "FORWARD" and r.get("target") == "DROP"]
    assert len(plain) == 1 and plain[0]["random_drop"] is False
    # iptables-nft's own tables are read through iptables-nft-save, not twice
    assert not [r for r in ipt["rules"] if r["backend"] == "nft-native" and r["table"] == "filter"]
    assert any("both iptables backends" in w for w in facts["warnings"]), facts["warnings"]


def test_counters_come_from_the_namespace(netns):
    peer = sh("ip", "-4", "-o", "addr", "show", "scope", "global", ns=netns).split()[3].split("/")[0]
    host_side = peer.rsplit(".", 1)[0] + ".1"
    before = facts_of(run_module("netstat_facts", netns=netns))["netstat"]
    sh("ping", "-c", "5", "-i", "0.2", "-W", "1", host_side, ns=netns)
    after = facts_of(run_module("netstat_facts", netns=netns))["netstat"]
    assert after["snmp"]["Icmp"]["InEchoReps"] - before["snmp"]["Icmp"]["InEchoReps"] == 5
    assert after["snmp"]["Icmp"]["OutEchos"] - before["snmp"]["Icmp"]["OutEchos"] == 5
    ifname = [n for n in after["interfaces"] if n != "lo"][0]
    assert after["interfaces"][ifname]["kind"] == "veth"
    assert after["interfaces"][ifname]["stats"]["tx_packets"] >= before["interfaces"][ifname]["stats"]["tx_packets"] + 5
    assert after["interfaces"][ifname]["driver_stats"]["peer_ifindex"] > 0  # veth's ethtool -S
    assert set(after["interfaces"]) == {"lo", ifname}  # the namespace's links, not the host's
    assert after["softnet"] and "time_squeeze" in after["softnet"][0]


def test_interval_takes_both_snapshots_in_one_module_run(netns):
    peer = sh("ip", "-4", "-o", "addr", "show", "scope", "global", ns=netns).split()[3].split("/")[0]
    host_side = peer.rsplit(".", 1)[0] + ".1"
    # pings all through the module run (ansible starts it about a second later), so they cross the interval
    ping = subprocess.Popen(["ip", "netns", "exec", netns, "ping", "-q", "-c", "80", "-i", "0.1", host_side],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = run_module("packetloss_facts", netns=netns, gather_subset=["netstat"], interval=1.5)
    finally:
        ping.kill()
        ping.wait()
    assert not result.get("failed"), result
    before, after = result["ansible_facts"]["packetloss_before"], result["ansible_facts"]["packetloss"]
    assert after["timestamp"] - before["timestamp"] >= 1.5
    sent = after["netstat"]["snmp"]["Icmp"]["OutEchos"] - before["netstat"]["snmp"]["Icmp"]["OutEchos"]
    assert 5 <= sent <= 40, sent  # 10 a second over about 1.5 s
    assert set(after["netstat"]["interfaces"]) == set(before["netstat"]["interfaces"])


def test_interval_is_at_least_the_asked_one_for_every_target(netns):
    result = run_module("packetloss_facts", namespaces=[netns], gather_subset=["netstat", "iptables"], interval=1)
    assert not result.get("failed"), result
    before = result["ansible_facts"]["packetloss_before"]["targets"]
    after = result["ansible_facts"]["packetloss"]["targets"]
    assert set(before) == set(after) == {"host", "netns:" + netns}
    for label in after:
        assert after[label]["timestamp"] - before[label]["timestamp"] >= 1.0, label


def test_tbf_qdisc_drops_are_read_over_netlink(netns):
    ifname = sh("ip", "-o", "link", "show", "type", "veth", ns=netns).split(":")[1].strip().split("@")[0]
    sh("tc", "qdisc", "add", "dev", ifname, "root", "tbf", "rate", "8kbit", "burst", "1600", "limit", "1600", ns=netns)
    peer = sh("ip", "-4", "-o", "addr", "show", "dev", ifname, ns=netns).split()[3].split("/")[0]
    blast = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "for _ in range(300): s.sendto(b'x' * 1000, ('%s', 9))" % (peer.rsplit(".", 1)[0] + ".1"))
    sh("python3", "-c", blast, ns=netns, check=False)
    facts = facts_of(run_module("tc_facts", netns=netns, interfaces=[ifname]))
    qdiscs = facts["tc"]["qdiscs"]
    assert [q["kind"] for q in qdiscs] == ["tbf"]
    tbf = qdiscs[0]
    assert tbf["root"] and tbf["parent"] == "root"
    assert tbf["options"]["rate_bps"] == 8000
    assert tbf["stats"]["drops"] > 0 and tbf["stats"]["packets"] > 0
    text = sh("tc", "-s", "qdisc", "show", "dev", ifname, ns=netns)
    assert "dropped %d," % tbf["stats"]["drops"] in text  # what tc itself prints, read a moment later


def test_netlink_reader_matches_pyroute2(netns):
    """pyroute2 (the controller's venv has it; the collection does not use it) reads the same links and qdiscs."""
    ifname = sh("ip", "-o", "link", "show", "type", "veth", ns=netns).split(":")[1].strip().split("@")[0]
    sh("ip", "link", "add", "ora0", "type", "veth", "peer", "name", "ora1", ns=netns)
    sh("ip", "link", "set", "ora0", "up", ns=netns)
    sh("tc", "qdisc", "add", "dev", ifname, "root", "handle", "1:", "htb", "default", "10", ns=netns)
    sh("tc", "class", "add", "dev", ifname, "parent", "1:", "classid", "1:10", "htb", "rate", "1mbit", ns=netns)
    sh("tc", "qdisc", "add", "dev", ifname, "parent", "1:10", "handle", "10:", "tbf", "rate", "8kbit", "burst", "1600",
       "limit", "1600", ns=netns)
    sh("tc", "qdisc", "add", "dev", ifname, "ingress", ns=netns)
    sh("tc", "qdisc", "add", "dev", "ora0", "root", "pfifo", "limit", "7", ns=netns)
    peer = sh("ip", "-4", "-o", "addr", "show", "dev", ifname, ns=netns).split()[3].split("/")[0]
    blast = ("import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "for _ in range(300): s.sendto(b'x' * 1000, ('%s', 9))\n"
             "time.sleep(2.5)" % (peer.rsplit(".", 1)[0] + ".1"))  # the tbf's queue drains: its backlog is 0 again
    sh(sys.executable, "-c", blast, ns=netns, check=False)
    out = json.loads(sh(sys.executable, os.path.join(os.path.dirname(__file__), "netlink_oracle.py"), COLLECTIONS,
                        ns=netns))
    assert out["diffs"] == [], out
    assert sorted(out["links"]) == sorted(["lo", ifname, "ora0", "ora1"])
    kinds = dict(((q[0], q[1]), q) for q in out["qdiscs"])
    assert kinds[(ifname, "tbf")][2:4] == ["10:", "1:10"] and kinds[(ifname, "tbf")][4] > 0, out  # drops compared
    assert kinds[(ifname, "ingress")][3] == "ingress" and kinds[("ora0", "pfifo")][3] == "root", out


def test_conntrack_of_a_namespace(netns):
    sh("iptables-nft", "-w", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT", ns=netns)
    sh("ping", "-c", "1", "-W", "1", "127.0.0.1", ns=netns)
    ct = facts_of(run_module("conntrack_facts", netns=netns))["conntrack"]
    assert ct["available"] and ct["loaded"]
    assert ct["count"] >= 1 and ct["max"] > 0
    assert ct["usage_percent"] == pytest.approx(100.0 * ct["count"] / ct["max"], abs=0.01)
    assert ct["stat"]["total"]["found"] >= 0 and len(ct["stat"]["per_cpu"]) == os.cpu_count()


def test_host_lab_container_random_drops_with_hits(host_lab):
    sh(HOST_LAB, "faults", "on")
    try:
        ip = sh(HOST_LAB, "ip").strip()
        hping(ip, count=20)
        facts = facts_of(run_module("packetloss_facts", containers=["all"]))
        ctr = facts["targets"]["container:nginx"]
        assert ctr["target"]["kind"] == "container"
        drops = ctr["iptables"]["random_drop_rules"]
        assert sorted(r["chain"] for r in drops) == ["INPUT", "OUTPUT"]
        for rule in drops:
            assert rule["statistic"]["probability"] == pytest.approx(0.30, abs=1e-6)
            assert rule["counters"]["packets"] > 0, rule
        assert facts["targets"]["host"]["iptables"]["random_drop_rules"] == []
        assert "netem" not in [q["kind"] for q in ctr["tc"]["qdiscs"]]
    finally:
        sh(HOST_LAB, "faults", "off")
    clean = facts_of(run_module("packetloss_facts", container="nginx", gather_subset=["iptables"]))
    assert clean["iptables"]["random_drop_rules"] == []


@pytest.mark.parametrize("args,needle", [
    ({"netns": "no-such-ns"}, "network namespace 'no-such-ns' not found"),
    ({"netns": "bad name!"}, "invalid network namespace name"),
    ({"container": "no-such-container"}, "container 'no-such-container' not found"),
    ({"interfaces": ["nosuch0"]}, "unknown interface(s): nosuch0"),
    ({"gather_subset": ["bogus"]}, "unknown gather_subset value(s): bogus"),
    ({"proc_root": "/nonexistent"}, "proc_root /nonexistent is not a directory"),
    ({"interval": -1}, "interval must be 0-3600 seconds, got -1"),
    ({"interval": 1, "proc_root": "/proc"}, "cannot be combined with proc_root"),
])
def test_bad_input_is_a_clear_error(args, needle):
    result = run_module("packetloss_facts", **args)
    if "interfaces" in args:  # a layer-level error: the other layers are still returned
        facts = facts_of(result)
        assert needle in facts["tc"]["reason"] and facts["conntrack"]["available"]
        return
    assert result.get("failed"), result
    assert needle in result["msg"]


def test_proc_root_reads_a_copied_tree_and_reports_a_broken_file(tmp_path):
    tree = tmp_path / "proc"
    (tree / "net" / "stat").mkdir(parents=True)
    (tree / "sys" / "net" / "netfilter").mkdir(parents=True)
    for rel in ("net/snmp", "net/netstat", "net/snmp6", "net/softnet_stat", "net/dev", "net/stat/nf_conntrack"):
        if os.path.exists("/proc/" + rel):
            shutil.copyfile("/proc/" + rel, str(tree / rel))
    for key in ("count", "max", "buckets"):
        (tree / "sys/net/netfilter" / ("nf_conntrack_" + key)).write_text({"count": "900\n", "max": "1000\n", "buckets": "256\n"}[key])
    facts = facts_of(run_module("packetloss_facts", proc_root=str(tree), gather_subset=["netstat", "conntrack"]))
    assert facts["conntrack"]["usage_percent"] == 90.0
    assert "lo" in facts["netstat"]["interfaces"]
    (tree / "net" / "snmp").write_text("Ip: Forwarding DefaultTTL\nIp: 1\n")
    facts = facts_of(run_module("packetloss_facts", proc_root=str(tree), gather_subset=["netstat", "conntrack"]))
    # per source: the broken net/snmp is not read (its path and reason), the rest of the layer is
    assert facts["netstat"]["available"] and "lo" in facts["netstat"]["interfaces"]
    snmp = facts["netstat"]["sources"]["snmp"]
    assert not snmp["read"] and snmp["path"] == str(tree / "net" / "snmp") and str(tree / "net" / "snmp") in snmp["reason"]
    assert "Tcp" not in facts["netstat"]["snmp"] and facts["netstat"]["snmp"]["TcpExt"]
    assert facts["conntrack"]["available"]


FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "unit", "fixtures")


def test_saved_outputs_are_read_through_src():
    """A support engineer's case: saved tc text and saved rulesets, read with the same modules."""
    tc = facts_of(run_module("tc_facts", src=os.path.join(FIXTURES, "tc", "blockade", "FLAKY_QDISC_SHOW.txt")))["tc"]
    assert tc["source"].endswith("FLAKY_QDISC_SHOW.txt")
    assert [(q["kind"], q["options"]["loss"]) for q in tc["qdiscs"]] == [("netem", 50.0)]
    kube = os.path.join(FIXTURES, "iptables", "kubernetes_website", "debug-service__iptables-save_grep_hostnames.txt")
    ipt = facts_of(run_module("iptables_facts", src=kube))["iptables"]
    assert ipt["rule_count"] > 0 and ipt["random_drop_rules"] == []
    assert any(r["statistic"] and r["statistic"]["mode"] == "random" for r in ipt["rules"])  # kube-proxy's balancing
    nft = [n for n in sorted(os.listdir(os.path.join(FIXTURES, "nft", "nftables_shell_dumps"))) if n.endswith(".json-nft")][0]
    parsed = facts_of(run_module("iptables_facts", src=os.path.join(FIXTURES, "nft", "nftables_shell_dumps", nft)))["iptables"]
    assert parsed["available"] and parsed["rulesets"][0]["backend"] == "nft-native"
    missing = run_module("iptables_facts", src="/nonexistent/rules.txt")
    assert missing.get("failed") and "cannot read src /nonexistent/rules.txt" in missing["msg"]


# ---- issue #14 items 5, 6 and 9: inputs that hung, ate memory, raised, or lost a whole layer ----

@contextlib.contextmanager
def within(seconds: int):
    """Fail (and kill the ansible run: subprocess.run kills its child on an exception) after ``seconds``."""
    def expired(_signum, _frame):
        raise AssertionError("no result within %d s: blocked" % seconds)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_fifo_as_src_or_netns_is_refused_without_blocking(tmp_path):
    """Item 6: each of these blocked forever on open()."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    what = "is a FIFO (named pipe), not a regular file: refused"
    with within(90):
        tc = run_module("tc_facts", src=fifo)
        ipt = run_module("iptables_facts", src=fifo)
        ns = run_module("netstat_facts", netns=fifo)
        ns_all = run_module("packetloss_facts", namespaces=[fifo])
    assert tc.get("failed") and tc["msg"] == "src: %s: %s" % (fifo, what)
    assert ipt.get("failed") and ipt["msg"] == "cannot read src %s: %s" % (fifo, what)
    for result in (ns, ns_all):
        assert result.get("failed") and result["msg"] == "cannot use %s as the network namespace of netns:%s: %s" % (fifo, fifo, what)


def test_netns_path_that_is_a_plain_file_is_refused(tmp_path):
    plain = tmp_path / "ns"
    plain.write_text("")
    result = run_module("conntrack_facts", netns=str(plain))
    assert result.get("failed") and result["msg"].startswith("%s is not a namespace file" % plain)


def _tree(tmp_path):
    tree = tmp_path / "proc"
    (tree / "net" / "stat").mkdir(parents=True)
    (tree / "sys" / "net" / "netfilter").mkdir(parents=True)
    for rel in ("net/snmp", "net/netstat", "net/snmp6", "net/softnet_stat", "net/dev", "net/stat/nf_conntrack"):
        shutil.copyfile("/proc/" + rel, str(tree / rel))
    for key, value in (("count", "900\n"), ("max", "1000\n"), ("buckets", "256\n")):
        (tree / "sys/net/netfilter" / ("nf_conntrack_" + key)).write_text(value)
    return tree


def _unread(layer):
    return sorted(name for name, source in layer["sources"].items() if not source["read"])


def test_proc_root_with_a_fifo_and_a_dev_zero_symlink(tmp_path):
    """Item 6: a proc_root file that is a FIFO hung; one symlinked to /dev/zero read until memory ran out."""
    tree = _tree(tmp_path)
    os.unlink(str(tree / "net" / "snmp"))
    os.mkfifo(str(tree / "net" / "snmp"))
    os.unlink(str(tree / "net" / "softnet_stat"))
    os.symlink("/dev/zero", str(tree / "net" / "softnet_stat"))
    os.unlink(str(tree / "net" / "stat" / "nf_conntrack"))
    os.symlink("/dev/zero", str(tree / "net" / "stat" / "nf_conntrack"))
    with within(60):
        result = run_module("packetloss_facts", proc_root=str(tree), gather_subset=["netstat", "conntrack"])
    facts = facts_of(result)
    net, ct = facts["netstat"], facts["conntrack"]
    assert net["available"] and _unread(net) == ["snmp", "softnet"]
    assert net["sources"]["snmp"]["reason"] == "%s: is a FIFO (named pipe), not a regular file: refused" % (tree / "net" / "snmp")
    assert net["sources"]["softnet"]["reason"] == "%s: is a character device, not a regular file: refused" % (tree / "net" / "softnet_stat")
    assert net["softnet"] is None and net["snmp"]["TcpExt"] and "lo" in net["interfaces"]
    assert ct["available"] and _unread(ct) == ["stat"] and ct["stat"] is None and ct["usage_percent"] == 90.0


def test_proc_root_without_net_dev_keeps_the_rest_of_the_layer(tmp_path):
    """Item 9: no net/dev in the copied tree lost the whole netstat layer."""
    tree = _tree(tmp_path)
    os.unlink(str(tree / "net" / "dev"))
    net = facts_of(run_module("netstat_facts", proc_root=str(tree)))["netstat"]
    assert net["available"] and _unread(net) == ["interfaces"] and net["interfaces"] is None
    assert net["sources"]["interfaces"]["path"] == str(tree / "net" / "dev")
    assert net["snmp"]["Tcp"] and net["snmp"]["TcpExt"] and net["snmp"]["Ip6"] and net["softnet"] and net["ipv6"]
    # with net/dev, the result says what a live (netlink) read has that the copy lacks
    shutil.copyfile("/proc/net/dev", str(tree / "net" / "dev"))
    net = facts_of(run_module("netstat_facts", proc_root=str(tree)))["netstat"]
    assert _unread(net) == [] and "rx_missed_errors" in net["sources"]["interfaces"]["lacks"]
    live = facts_of(run_module("netstat_facts", ethtool=False))["netstat"]
    assert live["sources"]["interfaces"] == {"path": "netlink", "read": True, "reason": None}


def test_huge_hex_fields_and_an_unreadable_conntrack_count(tmp_path):
    """Item 5: a 4000-digit hex field in softnet_stat / net/stat/nf_conntrack failed the module when its result was
    returned; nf_conntrack_count as a directory raised a TypeError. Now each is a source not read, with the reason."""
    tree = _tree(tmp_path)
    (tree / "net" / "softnet_stat").write_text(" ".join(["f" * 4000] + ["0"] * 12) + "\n")
    header = open("/proc/net/stat/nf_conntrack").readline()
    (tree / "net" / "stat" / "nf_conntrack").write_text(header + " ".join(["f" * 4000] + ["0"] * (len(header.split()) - 1)) + "\n")
    os.unlink(str(tree / "sys/net/netfilter/nf_conntrack_count"))
    (tree / "sys/net/netfilter/nf_conntrack_count").mkdir()
    facts = facts_of(run_module("packetloss_facts", proc_root=str(tree), gather_subset=["netstat", "conntrack"]))
    net, ct = facts["netstat"], facts["conntrack"]
    assert _unread(net) == ["softnet"] and "does not fit in 64 bits" in net["sources"]["softnet"]["reason"]
    assert _unread(ct) == ["count", "stat"] and "does not fit in 64 bits" in ct["sources"]["stat"]["reason"]
    assert ct["sources"]["count"]["reason"].endswith("is a directory, not a regular file: refused")
    assert ct["count"] is None and ct["usage_percent"] is None and ct["max"] == 1000


def _bounded_run(module, args):
    """Run the module through ansible in a child Python; return (seconds, peak RSS in MB of its biggest process)."""
    code = ("import json, resource, subprocess, sys, time\n"
            "t = time.monotonic()\n"
            "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)\n"
            "print(json.dumps([time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024]))\n")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(os.path.dirname(COLLECTIONS), "..", "ansible.cfg"))
    out = subprocess.run([sys.executable, "-c", code, "ansible", "localhost", "-m", "netdiag.packetloss." + module,
                          "-a", json.dumps(args)], stdout=subprocess.PIPE, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(COLLECTIONS)))
    return json.loads(out.stdout)


@pytest.mark.parametrize("module, args, needle", [
    ("tc_facts", {}, "more than the 4 MiB this input may have: refused"),
    ("iptables_facts", {"rules": "all"}, "more than the 32 MiB this input may have: refused"),
])
def test_a_100_mb_src_is_refused_in_bounded_time_and_memory(tmp_path, module, args, needle):
    """Item 6: a 100 MB src took tc_facts 5.7 GB and 239 s, iptables_facts rules: all 6 GB."""
    src = tmp_path / "big.txt"
    line = ("qdisc netem 8001: dev eth0 root refcnt 2 limit 1000 delay 100ms  10ms loss 1%\n" if module == "tc_facts"
            else "[5:300] -A INPUT -m statistic --mode random --probability 0.5 -j DROP\n")
    with open(str(src), "w") as handle:
        handle.write("*filter\n:INPUT ACCEPT [0:0]\n" if module == "iptables_facts" else "")
        chunk = line * (1024 * 1024 // len(line))
        for _chunk in range(100):
            handle.write(chunk)
    try:
        assert os.path.getsize(str(src)) >= 100 * 1000 * 1000
        result = run_module(module, src=str(src), **args)
        facts = result["ansible_facts"]["packetloss"] if not result.get("failed") else None
        layer = facts["tc" if module == "tc_facts" else "iptables"] if facts else {"reason": result["msg"]}
        assert needle in layer["reason"] and str(src) in layer["reason"]
        seconds, peak_mb = _bounded_run(module, dict(args, src=str(src)))
        assert seconds < 60 and peak_mb < 400, (seconds, peak_mb)
        print("%s on 100 MB: %.1f s, peak RSS %d MB" % (module, seconds, peak_mb))
    finally:
        os.unlink(str(src))
