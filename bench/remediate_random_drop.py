"""Benchmark: random_drop state=absent on a namespace with 20,000 rules (iptables-legacy and iptables-nft).

Not a test. Run as root from the repository (after scripts/test or scripts/diagnose set up .venv):
    .venv/bin/python bench/remediate_random_drop.py [--rules 20000] [--drops 10] [--runs 5] [--backend legacy|nft|both]

For each backend, in a namespace of its own holding --rules rules in the filter table (INPUT and 20 user chains,
with 100 kube-proxy-style statistic jumps that must stay) plus --drops random-drop rules spread over the chains,
it times (median of --runs; the drops are put back between runs):
  plan     reading and parsing the ruleset and choosing the rules (what check mode costs, in-process)
  apply    the one iptables-restore --noflush run deleting them (the table is committed once)
  verify   reading the ruleset again and comparing it with the one before minus the removed rules
  module   the whole module as Ansible runs it (ansible ad-hoc: start-up, plan, backup off, apply, verify)
  naive    what a shell loop does: one `iptables -D CHAIN <spec>` process per rule (each re-reads and re-commits
           the table), for comparison
  save     one `iptables-save -c` alone: the floor for reading
and checks each time that the ruleset afterwards equals the ruleset before the drops were added.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".ansible", "collections"))

from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import rules as rr  # noqa: E402
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import entered, netns_target  # noqa: E402


def sh(argv: List[str], data: str = None, check: bool = True) -> str:
    proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    if check and proc.returncode:
        raise SystemExit("%s failed: %s" % (" ".join(argv[:6]), proc.stderr[-500:]))
    return proc.stdout


def ruleset(n: int) -> str:
    users = ["BENCH-%02d" % i for i in range(20)]
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [":%s - [0:0]" % u for u in users] + [":KUBE-SEP-%02d - [0:0]" % i for i in range(10)]
    body = []
    for i in range(n - 100):
        if i % 5 == 4:
            body.append("-A %s -d 10.%d.%d.0/24 -p udp -m udp --dport %d -j RETURN"
                        % (users[i % 20], i // 256 % 256, i % 256, 1024 + i % 50000))
        else:
            body.append("-A INPUT -s 10.%d.%d.0/24 -p tcp -m tcp --dport %d -m comment --comment \"rule %d\" -j ACCEPT"
                        % (i // 256 % 256, i % 256, 1024 + i % 50000, i))
    for i in range(100):  # kube-proxy's load balancing: random, but a jump - must stay
        body.append("-A FORWARD -m statistic --mode random --probability 0.%02d000000000 -j KUBE-SEP-%02d"
                    % (i % 90 + 5, i % 10))
    return "\n".join(lines + body + ["COMMIT", ""])


def drops(count: int, n: int) -> List[List[str]]:
    """Random drops spread over INPUT and the user chains (positions within each chain's length)."""
    size = {"INPUT": sum(1 for i in range(n - 100) if i % 5 != 4)}
    for u in range(20):
        size["BENCH-%02d" % u] = sum(1 for i in range(n - 100) if i % 5 == 4 and i % 20 == u)
    out = []
    for i in range(count):
        chain = "INPUT" if i % 2 == 0 else "BENCH-%02d" % (i % 20)
        position = str(1 + (i * 7919) % max(1, size[chain]))
        mode = ["--mode", "random", "--probability", "0.3"] if i % 3 else ["--mode", "nth", "--every", "4", "--packet", "1"]
        out.append(["-I", chain, position, "-m", "statistic"] + mode + ["-j", "DROP"])
    return out


def normalized(text: str) -> str:
    return rr.normalize_save(text)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(backend: str, n: int, k: int, runs: int) -> Dict[str, float]:
    ns = "ndbench-rd-" + backend
    sh(["ip", "netns", "del", ns], check=False)
    sh(["ip", "netns", "add", ns])
    ipt = ["ip", "netns", "exec", ns, "iptables-" + backend]
    try:
        sh(["ip", "netns", "exec", ns, "iptables-%s-restore" % backend], data=ruleset(n))
        clean = normalized(sh(["ip", "netns", "exec", ns, "iptables-%s-save" % backend]))
        target = netns_target(ns)
        v = rr.validate({"state": "absent", "backend": backend, "family": "ipv4"})
        times: Dict[str, List[float]] = {k_: [] for k_ in ("plan", "apply", "verify", "module", "naive", "save")}

        def inject() -> None:
            for argv in drops(k, n):
                sh(ipt + ["-w"] + argv)

        def check() -> None:
            got = normalized(sh(["ip", "netns", "exec", ns, "iptables-%s-save" % backend]))
            if got != clean:
                raise SystemExit("%s: the ruleset after the removal differs from the one before" % backend)

        for run in range(runs + 1):  # the first run warms caches and is not counted
            inject()
            with entered(target):
                plan = None

                def make() -> None:
                    nonlocal plan
                    plan = rr.plan_absent(target, v)
                t_plan = timed(make)
                assert plan is not None and len(plan.removed) == k, len(plan.removed)
                t_apply = timed(lambda: [s.apply() for s in plan.steps])
                problems: List[str] = []
                t_verify = timed(lambda: problems.extend(plan.verify()))
                assert problems == [], problems
                t_save = timed(lambda: sh(["iptables-%s-save" % backend, "-c"]))
            check()
            inject()
            cmd = ["ansible", "localhost", "-i", os.path.join(ROOT, "playbooks", "inventory", "localhost.yml"),
                   "-m", "netdiag.packetloss.random_drop", "-a",
                   json.dumps({"state": "absent", "netns": ns, "backend": backend, "family": "ipv4"})]
            env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                       ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".ansible", "collections"))
            t_module = timed(lambda: subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True))
            check()
            inject()
            saved = sh(["ip", "netns", "exec", ns, "iptables-%s-save" % backend])
            specs = rr.select_iptables(rr.IptRuleset("ipv4", backend, saved).parsed)
            t_naive = timed(lambda: [sh(ipt + ["-w", "-D", r["chain"]] + r["spec"].split()) for r in specs])
            check()
            if run:
                for key, value in (("plan", t_plan), ("apply", t_apply), ("verify", t_verify), ("module", t_module),
                                   ("naive", t_naive), ("save", t_save)):
                    times[key].append(value)
        return dict((key, statistics.median(values)) for key, values in times.items())
    finally:
        sh(["ip", "netns", "del", ns], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=20000)
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=["legacy", "nft", "both"], default="both")
    args = parser.parse_args()
    backends = ["legacy", "nft"] if args.backend == "both" else [args.backend]
    print("random_drop state=absent: %d rules + %d random drops, median of %d runs (seconds)"
          % (args.rules, args.drops, args.runs))
    print("%-8s %8s %8s %8s %8s %8s %8s" % ("backend", "plan", "apply", "verify", "module", "naive", "save"))
    for backend in backends:
        t = bench(backend, args.rules, args.drops, args.runs)
        row = [t[key] for key in ("plan", "apply", "verify", "module", "naive", "save")]
        print("%-8s %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f" % tuple([backend] + row))


if __name__ == "__main__":
    main()
