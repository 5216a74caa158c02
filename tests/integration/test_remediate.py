"""random_drop and netem on this machine's kernel, in namespaces we create.

Real rulesets (the iptables-save dumps under tests/unit/fixtures/iptables) are loaded with iptables-legacy-restore
and iptables-nft-restore, random-drop rules are added (random and nth, DROP and REJECT, built-in and user chains,
IPv4 and IPv6, native nftables numgen), and after random_drop state=absent every ruleset equals the one before,
rule for rule and in order (counters aside). This kernel has no sch_netem: netem state=present must fail cleanly.
"""
from __future__ import annotations

import glob
import os
import re
import stat
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest

from conftest import ROOT, ok, play_task, sh

FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "iptables")
INVENTORY = os.path.join(ROOT, "playbooks", "inventory", "localhost.yml")
BUILTIN = {"filter": ("INPUT", "FORWARD", "OUTPUT"), "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
           "raw": ("PREROUTING", "OUTPUT"), "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
           "security": ("INPUT", "FORWARD", "OUTPUT")}


# ---- helpers --------------------------------------------------------------------------------------

def run_task(module: str, check: bool = False, **args: Any) -> Dict[str, Any]:
    """Run netdiag.packetloss.<module> on localhost as a playbook task (with diff); return the registered result."""
    return play_task(INVENTORY, "localhost", "netdiag.packetloss." + module, check, **args)


def in_ns(ns: str, *argv: str, data: Optional[str] = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(("ip", "netns", "exec", ns) + argv, input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=False)
    if check and proc.returncode:
        raise AssertionError("%s failed: %s" % (" ".join(argv), proc.stderr))
    return proc


def normalized(text: str) -> str:
    """iptables-save output without comments and counters (an oracle of its own, not the module's code)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"^\[\d+:\d+\]\s*", "", line)
        line = re.sub(r"^(:\S+ \S+) \[\d+:\d+\]$", r"\1", line)
        out.append(line)
    return "\n".join(out)


def saved(ns: str, prefix: str, backend: str) -> str:
    return normalized(in_ns(ns, "%s-%s-save" % (prefix, backend)).stdout)


def nft_table(ns: str, family: str, table: str) -> str:
    text = in_ns(ns, "nft", "list", "table", family, table, check=False).stdout
    return re.sub(r"counter packets \d+ bytes \d+", "counter", text)


def snapshot(ns: str, rulesets: List[Tuple[str, str]]) -> Dict[str, str]:
    shot = dict(("%s-%s" % rs, saved(ns, *rs)) for rs in rulesets)
    shot["nft"] = nft_table(ns, "inet", "chaos")
    return shot


def loadable(rel: str) -> str:
    """A dump as iptables-restore takes it; grep output and single rules get a *nat table and their chains."""
    with open(os.path.join(FIXTURES, rel)) as handle:
        text = handle.read()
    if re.search(r"^\*", text, re.M):
        return text
    chains = []
    for m in re.finditer(r"(?:-A|-j|-g) (\S+)", text):
        if m.group(1) not in chains and m.group(1) not in ("DNAT", "SNAT", "MARK", "ACCEPT", "DROP", "RETURN", "MASQUERADE"):
            chains.append(m.group(1))
    return "*nat\n" + "".join(":%s - [0:0]\n" % c for c in chains) + text.rstrip("\n") + "\nCOMMIT\n"


def dumps() -> List[str]:
    return sorted(os.path.relpath(p, FIXTURES) for p in glob.glob(os.path.join(FIXTURES, "**", "*"), recursive=True)
                  if os.path.isfile(p) and not p.endswith((".json", ".t", ".txlate")))


def family_of(rel: str) -> str:
    return "ipv6" if "ip6" in os.path.basename(rel).lower() else "ipv4"


def tables_of(text: str) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            out[table] = []
        elif line.startswith(":") and table:
            out[table].append(line[1:].split()[0])
    return out


# ---- random_drop: real dumps ----------------------------------------------------------------------

@pytest.mark.parametrize("rel", dumps())
def test_random_drops_leave_every_real_dump_as_it_was(netns: str, rel: str, tmp_path: Any) -> None:
    family = family_of(rel)
    prefix, other = ("ip6tables", "iptables") if family == "ipv6" else ("iptables", "ip6tables")
    text = loadable(rel)
    loaded, refused = [], []
    for backend in ("legacy", "nft"):
        proc = in_ns(netns, "%s-%s-restore" % (prefix, backend), "-w", data=text, check=False)
        if proc.returncode:
            refused.append("%s-%s-restore: %s" % (prefix, backend, proc.stderr.strip().splitlines()[0]))
        else:
            loaded.append(backend)
    if not loaded:
        pytest.skip("%s refused by this kernel / iptables 1.8.9: %s" % (rel, "; ".join(refused)))
    # tables the drills need exist before the 'before' snapshot; kube-proxy-like load balancing that must stay
    for backend in loaded:
        for argv in (["-A", "INPUT", "-j", "ACCEPT"], ["-D", "INPUT", "-j", "ACCEPT"], ["-N", "NDT-LB"],
                     ["-A", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", "0.5", "-j", "NDT-LB"],
                     ["-A", "FORWARD", "-s", "2001:db8::/32" if family == "ipv6" else "192.0.2.0/24", "-j", "DROP"]):
            in_ns(netns, "%s-%s" % (prefix, backend), "-w", *argv)
    in_ns(netns, other + "-nft", "-A", "INPUT", "-j", "ACCEPT")
    in_ns(netns, "nft", "add table inet chaos; add chain inet chaos in { type filter hook input priority 10; }; "
                        "add rule inet chaos in tcp dport 22 accept")
    rulesets = [(prefix, b) for b in loaded] + [(other, "nft")]
    before = snapshot(netns, rulesets)

    injected = 0
    tables = tables_of(text)
    for backend in loaded:
        cmd = "%s-%s" % (prefix, backend)
        reject = "icmp6-port-unreachable" if family == "ipv6" else "icmp-port-unreachable"
        drills = [["-I", "INPUT", "1", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"],
                  ["-A", "OUTPUT", "-m", "statistic", "--mode", "nth", "--every", "3", "--packet", "0", "-j", "REJECT",
                   "--reject-with", reject]]
        users = [c for c in tables.get("filter", []) if c not in BUILTIN["filter"]]
        if users:
            drills.append(["-I", users[0], "1", "-p", "tcp", "-m", "statistic", "--mode", "random",
                           "--probability", "0.1", "-j", "DROP"])
        if "mangle" in tables:
            drills.append(["-t", "mangle", "-A", "PREROUTING", "-m", "statistic", "--mode", "random",
                           "--probability", "0.05", "-j", "DROP"])
        for argv in drills:
            in_ns(netns, cmd, "-w", *argv)
        injected += len(drills)
    in_ns(netns, other + "-nft", "-I", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP")
    in_ns(netns, "nft", "insert rule inet chaos in numgen random mod 10 < 3 counter drop; "
                        "add rule inet chaos in numgen inc mod 4 vmap { 0 : drop, 1-3 : accept }")
    injected += 3
    faulty = snapshot(netns, rulesets)

    # check mode: what would go, the diff, nothing changed
    dry = ok(run_task("random_drop", check=True, state="absent", netns=netns))
    assert dry["changed"] and len(dry["removed"]) == injected, dry["removed"]
    assert dry["diff"] and all(d["before"] != d["after"] for d in dry["diff"])
    assert snapshot(netns, rulesets) == faulty

    # the removal: exactly the injected rules, everything else as before
    backup_dir = str(tmp_path / "backup")
    done = ok(run_task("random_drop", state="absent", netns=netns, backup=True, backup_dir=backup_dir))
    assert done["changed"] and len(done["removed"]) == injected
    assert sorted((r["family"], r["backend"], r["table"], r["chain"]) for r in done["removed"]) == \
        sorted((r["family"], r["backend"], r["table"], r["chain"]) for r in dry["removed"])
    after = snapshot(netns, rulesets)
    for key in before:
        assert after[key] == before[key], "%s differs after the removal" % key
    assert "NDT-LB" in after["%s-%s" % (prefix, loaded[0])]  # the load-balancing jump is still there

    # a second run finds nothing
    again = ok(run_task("random_drop", state="absent", netns=netns))
    assert again["changed"] is False and again["removed"] == []

    # the backups: mode 0600, and they restore the faulty state
    assert done["backup_files"] and done["backup_file"] == done["backup_files"][0]["path"]
    for entry in done["backup_files"]:
        assert stat.S_IMODE(os.stat(entry["path"]).st_mode) == 0o600
        assert entry["restore"].startswith("ip netns exec %s " % netns)
        subprocess.run(entry["restore"], shell=True, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert snapshot(netns, rulesets) == faulty


def test_filters_take_only_their_scope(netns: str) -> None:
    in_ns(netns, "iptables-legacy", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.25", "-j", "DROP")
    in_ns(netns, "iptables-nft", "-A", "OUTPUT", "-m", "statistic", "--mode", "random", "--probability", "0.25", "-j", "DROP")
    in_ns(netns, "iptables-nft", "-t", "raw", "-A", "OUTPUT", "-m", "statistic", "--mode", "random", "--probability", "0.25",
          "-j", "DROP")
    in_ns(netns, "ip6tables-nft", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.25", "-j", "DROP")
    in_ns(netns, "nft", "add table inet chaos; add chain inet chaos in { type filter hook input priority 10; }; "
                        "add rule inet chaos in meta random & 1023 < 100 drop")

    def left() -> List[Tuple[str, str, str, str]]:
        r = ok(run_task("random_drop", check=True, state="absent", netns=netns))
        return sorted((x["family"], x["backend"], x["table"], x["chain"]) for x in r["removed"])
    everything = left()
    assert len(everything) == 5
    steps = [({"family": "ipv6"}, ("ipv6", "nft", "filter", "INPUT")),
             ({"backend": "legacy"}, ("ipv4", "legacy", "filter", "INPUT")),
             ({"table": "raw"}, ("ipv4", "nft", "raw", "OUTPUT")),
             ({"backend": "nft-native", "family": "inet"}, ("inet", "nft-native", "chaos", "in")),
             ({"chain": "OUTPUT", "family": "ipv4"}, ("ipv4", "nft", "filter", "OUTPUT"))]
    for args, gone in steps:
        r = ok(run_task("random_drop", state="absent", netns=netns, **args))
        assert [(x["family"], x["backend"], x["table"], x["chain"]) for x in r["removed"]] == [gone], (args, r["removed"])
        everything.remove(gone)
        assert left() == everything
    assert everything == []


def test_drill_rule_present(netns: str) -> None:
    in_ns(netns, "iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
    before = saved(netns, "iptables", "nft")
    dry = ok(run_task("random_drop", check=True, state="present", netns=netns, chain="INPUT", probability=0.3))
    assert dry["changed"] and saved(netns, "iptables", "nft") == before
    assert "-A INPUT -m statistic --mode random --probability 0.29999999981 -j DROP" in dry["diff"][0]["after"]
    r = ok(run_task("random_drop", state="present", netns=netns, chain="INPUT", probability=0.3, backend="nft"))
    assert r["changed"] and r["added"][0]["rule"] == "-A INPUT -m statistic --mode random --probability 0.29999999981 -j DROP"
    assert saved(netns, "iptables", "nft").splitlines()[4] == r["added"][0]["rule"]  # at the top of INPUT
    assert ok(run_task("random_drop", state="present", netns=netns, chain="INPUT", probability=0.3))["changed"] is False
    # another probability replaces it in place
    r = ok(run_task("random_drop", state="present", netns=netns, chain="INPUT", probability=0.5))
    assert r["changed"] and len(r["removed"]) == 1 and saved(netns, "iptables", "nft").count("statistic") == 1
    assert "--probability 0.50000000000" in saved(netns, "iptables", "nft").splitlines()[4]
    # IPv6, legacy, TCP port 80
    args = dict(state="present", netns=netns, chain="OUTPUT", probability=0.25, protocol="tcp", port=80, family="ipv6",
                backend="legacy")
    assert ok(run_task("random_drop", **args))["changed"]
    assert "-A OUTPUT -p tcp -m tcp --dport 80 -m statistic --mode random --probability 0.25000000000 -j DROP" in \
        saved(netns, "ip6tables", "legacy")
    assert ok(run_task("random_drop", **args))["changed"] is False
    # native nftables: table and base chain created
    args = dict(state="present", netns=netns, chain="input", probability=0.1, backend="nft-native", family="inet",
                protocol="udp")
    r = ok(run_task("random_drop", **args))
    assert r["changed"] and "meta l4proto udp numgen random mod 100 < 10" in nft_table(netns, "inet", "netdiag")
    assert ok(run_task("random_drop", **args))["changed"] is False
    # and all of it goes again
    r = ok(run_task("random_drop", state="absent", netns=netns))
    assert len(r["removed"]) == 3
    assert saved(netns, "iptables", "nft") == before


BAD = [
    (dict(state="absent", chain="bad chain"), "invalid chain name"),
    (dict(state="absent", table="x;reboot"), "invalid table name"),
    (dict(state="absent", chain="INPUT\n-F"), "invalid chain name"),
    (dict(state="present", chain="INPUT", probability=0), "probability must be in (0, 1]"),
    (dict(state="present", chain="INPUT", probability=1.5), "probability must be in (0, 1]"),
    (dict(state="present", chain="INPUT", probability=0.5, protocol="tcp", port=70000), "port must be in 1..65535"),
    (dict(state="present", chain="INPUT", probability=0.5, protocol="gre"), "value of protocol must be one of"),
    (dict(state="present", chain="NOSUCH", probability=0.5), "chain NOSUCH does not exist"),
    (dict(state="present", chain="INPUT", probability=0.5, table="nat"), None),  # iptables refuses DROP in nat
    (dict(state="absent", family="ipx"), "value of family must be one of"),
    (dict(state="absent", probability=0.5), "probability only with state=present"),
]


def test_bad_arguments_change_nothing(netns: str) -> None:
    in_ns(netns, "iptables-nft", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP")
    in_ns(netns, "iptables-legacy", "-A", "INPUT", "-j", "ACCEPT")
    rulesets = [("iptables", "nft"), ("iptables", "legacy")]
    in_ns(netns, "nft", "add table inet chaos")
    before = snapshot(netns, rulesets)
    for args, needle in BAD:
        r = run_task("random_drop", netns=netns, **args)
        assert r.get("failed"), args
        if needle:
            assert needle in r["msg"], (args, r["msg"])
        assert snapshot(netns, rulesets) == before, args
    for args, needle in [(dict(netns="no-such-ns"), "network namespace 'no-such-ns' not found"),
                         (dict(netns="../etc"), "invalid network namespace name"),
                         (dict(container="bad/name"), "invalid container name")]:
        r = run_task("random_drop", state="absent", **args)
        assert r.get("failed") and needle in r["msg"], r


# ---- netem ----------------------------------------------------------------------------------------

def kernel_has_netem() -> bool:
    sys.path.insert(0, os.path.join(ROOT, ".ansible", "collections"))
    from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.netem import netem_support
    return netem_support() is not False


def veth(ns: str) -> str:
    return sh("ip", "-o", "link", "show", "type", "veth", ns=ns).split(":")[1].strip().split("@")[0]


@pytest.mark.skipif(kernel_has_netem(), reason="this kernel has netem: the VM tests cover it")
def test_netem_present_fails_cleanly_without_sch_netem(netns: str, tmp_path: Any) -> None:
    ifname = veth(netns)
    sh("tc", "qdisc", "add", "dev", ifname, "root", "tbf", "rate", "1mbit", "burst", "16k", "limit", "30k", ns=netns)
    before = sh("tc", "qdisc", "show", ns=netns)
    for check in (True, False):
        r = run_task("netem", check=check, state="present", netns=netns, interface=ifname, loss=30, force=True,
                     backup=True, backup_dir=str(tmp_path))
        assert r.get("failed") and r["msg"].startswith("the kernel has no sch_netem"), r
        assert "nothing was changed" in r["msg"] and not r.get("changed")
        assert sh("tc", "qdisc", "show", ns=netns) == before
    # without force the user's tbf is not replaced at all
    r = run_task("netem", state="present", netns=netns, interface=ifname, loss=30)
    assert r.get("failed") and "set force=true" in r["msg"]
    # absent: nothing to remove, the tbf stays
    r = ok(run_task("netem", state="absent", netns=netns))
    assert r["changed"] is False and r["removed"] == [] and "tbf" in [q["kind"] for q in r["scanned"]]
    assert sh("tc", "qdisc", "show", ns=netns) == before


def test_netem_bad_arguments(netns: str) -> None:
    ifname = veth(netns)
    for args, needle in [(dict(state="present", interface="nosuch0", loss=1), "unknown interface(s): nosuch0"),
                         (dict(state="present", interface=ifname, loss=120), "loss must be a percentage 0..100"),
                         (dict(state="present", interface=ifname, jitter="10ms"), "jitter needs delay"),
                         (dict(state="present", interface="eth0;ls", loss=1), "invalid interface name"),
                         (dict(state="present", loss=1), "state is present but all of the following are missing: interface"),
                         (dict(state="absent", match={"loss": {"least": 1}}), "match.loss takes min and/or max")]:
        r = run_task("netem", netns=netns, **args)
        assert r.get("failed") and needle in r["msg"], (args, r.get("msg"))


def test_qdisc_requests_reach_this_kernel(netns: str) -> None:
    """The rtnetlink requests the netem module sends, with a qdisc this kernel has (pfifo): add, refuse, delete."""
    import struct
    sys.path.insert(0, os.path.join(ROOT, ".ansible", "collections"))
    from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import netem as rn
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.rtnetlink import Netlink
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.tc import read_qdiscs
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import entered, netns_target
    ifname = veth(netns)
    with entered(netns_target(netns)):
        import socket
        index = socket.if_nametoindex(ifname)
        rn.tc_request(rn.RTM_NEWQDISC, rn.NLM_F_CREATE | rn.NLM_F_REPLACE | rn.NLM_F_EXCL, index, 0, rn.TC_H_ROOT,
                      "pfifo", struct.pack("=I", 77))
        with Netlink() as nl:
            root = [q for q in read_qdiscs(nl, [ifname]) if q["root"]][0]
        assert root["kind"] == "pfifo" and root["options"] == {"limit": 77}
        with pytest.raises(rn.TcError) as err:
            rn.tc_request(rn.RTM_NEWQDISC, rn.NLM_F_CREATE | rn.NLM_F_EXCL, index, 0x10000, rn.TC_H_ROOT, "pfifo",
                          struct.pack("=I", 1), what="again")
        assert err.value.code == 17 and err.value.kernel_msg  # EEXIST, with the kernel's own words
        if not kernel_has_netem():
            with pytest.raises(rn.TcError) as err:
                rn.tc_request(rn.RTM_NEWQDISC, rn.NLM_F_CREATE | rn.NLM_F_REPLACE | rn.NLM_F_EXCL, index, 0,
                              rn.TC_H_ROOT, "netem", rn.encode_netem_options({"loss": 30, "loss_model": "random"}))
            assert err.value.code == 2 and "kind is unknown" in err.value.kernel_msg
        rn.tc_request(rn.RTM_DELQDISC, 0, index, rn.parse_handle(root["handle"]), rn.TC_H_ROOT)
        with Netlink() as nl:
            assert [q["kind"] for q in read_qdiscs(nl, [ifname]) if q["root"]] != ["pfifo"]
    # a child qdisc (here a pfifo below an htb class, where a netem would sit) is replaced by the default qdisc in
    # one request, as the module replaces a child netem
    sh("tc", "qdisc", "add", "dev", ifname, "root", "handle", "1:", "htb", ns=netns)
    sh("tc", "class", "add", "dev", ifname, "parent", "1:", "classid", "1:10", "htb", "rate", "1mbit", ns=netns)
    sh("tc", "qdisc", "add", "dev", ifname, "parent", "1:10", "handle", "10:", "pfifo", "limit", "5", ns=netns)
    child = {"interface": ifname, "ifindex": index, "kind": "pfifo", "handle": "10:", "parent": "1:10", "root": False}
    with entered(netns_target(netns)):
        rn._remove_step(child, rn.default_qdisc()).apply()
        with Netlink() as nl:
            below = [(q["kind"], q["parent"]) for q in read_qdiscs(nl, [ifname]) if not q["root"]]
    assert below == [(rn.default_qdisc(), "1:10")]
