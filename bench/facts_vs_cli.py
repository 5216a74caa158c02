"""Benchmark: packetloss_facts over all layers vs the seed's CLI walk, on a namespace with 10,000 rules.

Not a test. Run as root from the repository (after scripts/test or scripts/diagnose set up .venv):
    .venv/bin/python bench/facts_vs_cli.py [--rules 10000] [--runs 7] [--backend nft|legacy]

In one run, in the same namespace, it times (median of --runs, after a warm-up):
  facts   the collection packetloss_facts runs (every layer, in-process: what the module does after start-up),
          with rules: all (every rule parsed and listed), rules: drops (facts_drops; what the roles use) and
          rules: all with rules_format: compact (facts_compact)
  module  the whole packetloss_facts module process (python start-up, imports, collection, JSON out), as Ansible
          runs it, with rules: all and rules: drops
  ipt     the whole iptables_facts module process: rules: all (ipt_full), rules: all with rules_format: compact
          (ipt_compact), rules: drops (ipt_drops)
  cli     the seed's walk: spawn tc -s qdisc, ip -s link, netstat -s, sysctl (conntrack count/max),
          iptables-save -c, ip6tables-save -c and nft -j list ruleset, and parse their text into the same kind
          of data (the rulesets with this collection's own parsers, the rest with small line parsers)
  floor   iptables-save -c plus ip6tables-save -c alone, unparsed: the irreducible cost
and prints the ratios cli/facts, cli/ipt_compact (goal >= 3) and facts_drops/floor (goal <= 1.3).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".ansible", "collections"))

from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import Collector, LAYERS  # noqa: E402
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import parse_iptables_save  # noqa: E402
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.nftables import parse_nft_json  # noqa: E402
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import entered, netns_target  # noqa: E402

NS = "ndbench"


def run(argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False).stdout.decode()


def setup(rules: int, backend: str) -> None:
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":KUBE-LIKE - [0:0]"]
    for i in range(rules):
        chain = "INPUT" if i % 2 else "KUBE-LIKE"
        lines.append('-A %s -s 10.%d.%d.0/24 -p tcp -m tcp --dport %d -m comment --comment "svc %d" -j ACCEPT'
                     % (chain, (i // 256) % 256, i % 256, 1000 + i % 5000, i))
    lines += ["-A INPUT -m statistic --mode random --probability 0.30 -j DROP", "COMMIT"]
    with tempfile.NamedTemporaryFile("w", suffix=".rules", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    subprocess.run(["ip", "netns", "exec", NS, "iptables-%s-restore" % backend, handle.name], check=True)
    subprocess.run(["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"], check=True)
    os.unlink(handle.name)


def cli_walk(save_prefix: str) -> dict:
    out = {}
    out["tc"] = [l.split() for l in run(["tc", "-s", "qdisc", "show"]).splitlines()]
    out["links"] = [l.split() for l in run(["ip", "-s", "link"]).splitlines()]
    snmp = {}
    section = None
    for line in run(["netstat", "-s"]).splitlines():
        if line and not line[0].isspace():
            section = line.rstrip(":")
        elif section:
            words = line.split()
            nums = [w for w in words if w.isdigit()]
            if nums:
                snmp.setdefault(section, {})[" ".join(w for w in words if not w.isdigit())] = int(nums[0])
    out["snmp"] = snmp
    out["sysctl"] = run(["sysctl", "net.netfilter.nf_conntrack_count", "net.netfilter.nf_conntrack_max"]).split()
    out["v4"] = parse_iptables_save(run([save_prefix.replace("ip", "iptables", 1) + "-save", "-c"]), family="ipv4")
    out["v6"] = parse_iptables_save(run([save_prefix.replace("ip", "ip6tables", 1) + "-save", "-c"]), family="ipv6")
    out["nft"] = parse_nft_json(run(["nft", "-j", "list", "ruleset"]) or '{"nftables": []}')
    return out


def floor(save_prefix: str) -> None:
    run([save_prefix.replace("ip", "iptables", 1) + "-save", "-c"])
    run([save_prefix.replace("ip", "ip6tables", 1) + "-save", "-c"])


def timed(fn, runs: int) -> list:
    fn()  # warm-up
    samples = []
    for _run in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def module_process(runs: int, rules: str, module: str = "packetloss_facts", rules_format: str = "full") -> list:
    args = os.path.join(tempfile.mkdtemp(), "args.json")
    with open(args, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": {"netns": NS, "rules": rules, "rules_format": rules_format}}, handle)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, ".ansible", "collections"))
    argv = [sys.executable, os.path.join(ROOT, "plugins", "modules", module + ".py"), args]

    def once():
        proc = subprocess.run(argv, stdout=subprocess.PIPE, env=env, check=True)
        ipt = json.loads(proc.stdout)["ansible_facts"]["packetloss"]["iptables"]
        assert ipt["rule_count"] > 0 and ipt["random_drop_rules"]
        if rules_format == "compact":
            assert sum(len(g["rules"]) for g in ipt["rule_lines"]) == ipt["rule_count"]

    return timed(once, runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--backend", choices=["nft", "legacy"], default="nft")
    opts = ap.parse_args()
    setup(opts.rules, opts.backend)
    prefix = "ip-%s" % opts.backend  # iptables-nft-save / ip6tables-nft-save
    target = netns_target(NS)
    try:
        with entered(target):
            facts = timed(lambda: Collector().collect(target, list(LAYERS)), opts.runs)
            drops = timed(lambda: Collector(rules="drops").collect(target, list(LAYERS)), opts.runs)
            compact = timed(lambda: Collector(rules_format="compact").collect(target, list(LAYERS)), opts.runs)
            sample = Collector().collect(target, list(LAYERS))
            cli = timed(lambda: cli_walk(prefix), opts.runs)
            flo = timed(lambda: floor(prefix), opts.runs)
        module = module_process(opts.runs, "all")
        module_drops = module_process(opts.runs, "drops")
        ipt_full = module_process(opts.runs, "all", "iptables_facts")
        ipt_compact = module_process(opts.runs, "all", "iptables_facts", "compact")
        ipt_drops = module_process(opts.runs, "drops", "iptables_facts")
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)
    samples = {"facts": facts, "facts_drops": drops, "facts_compact": compact, "module": module,
               "module_drops": module_drops, "ipt_full": ipt_full, "ipt_compact": ipt_compact, "ipt_drops": ipt_drops,
               "cli": cli, "floor": flo}
    med = dict((k, statistics.median(v)) for k, v in samples.items())
    print("rules in the namespace: %d (%s backend), rules read: %d, random drops found: %d"
          % (opts.rules + 1, opts.backend, sample["iptables"]["rule_count"], len(sample["iptables"]["random_drop_rules"])))
    for key, values in samples.items():
        print("%-13s median %.3f s  (min %.3f, max %.3f, %d runs)" % (key, med[key], min(values), max(values), opts.runs))
    print("ratio cli/facts              %.2f  (goal >= 3)" % (med["cli"] / med["facts"]))
    print("ratio cli/facts_drops        %.2f  (goal >= 3)" % (med["cli"] / med["facts_drops"]))
    print("ratio facts/floor            %.2f  (goal <= 1.3)" % (med["facts"] / med["floor"]))
    print("ratio facts_drops/floor      %.2f  (goal <= 1.3)" % (med["facts_drops"] / med["floor"]))
    print("ratio cli/module             %.2f  (whole module process, rules: all)" % (med["cli"] / med["module"]))
    print("ratio cli/module_drops       %.2f  (whole module process, rules: drops)" % (med["cli"] / med["module_drops"]))
    print("ratio cli/ipt_full           %.2f  (whole iptables_facts process, rules: all)" % (med["cli"] / med["ipt_full"]))
    print("ratio cli/ipt_compact        %.2f  (goal >= 3: whole iptables_facts process, rules: all, compact)"
          % (med["cli"] / med["ipt_compact"]))
    print("ratio cli/ipt_drops          %.2f  (whole iptables_facts process, rules: drops)" % (med["cli"] / med["ipt_drops"]))
    print("ratio facts_compact/floor    %.2f" % (med["facts_compact"] / med["floor"]))


if __name__ == "__main__":
    main()
