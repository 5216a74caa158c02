# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wall time of remediate.yml over the fleet lab against Ansible's own floor, before and after a change, in one run.

On one fleet (lab/fleet/fleet-lab start N), with the same forks, for each repeat:

  floor    bench/fleet_floor.yml: ansible.builtin.ping once per host
  before   playbooks/remediate.yml of the collection as it is at --before (a git revision, default main)
  after    playbooks/remediate.yml of this tree
  diagnose0  playbooks/diagnose.yml of this tree with packetloss_interval 0, no reports: one read of every layer,
             the cost remediate.yml's one module run per host compares with

Each remediate run starts from the fleet's faults in place (every random-drop rule planted again, outside the timed
part) and must succeed (every host verified). Not a test. Prints the ratios to the floor measured in the same run;
writes bench/fleet_remediate_results.json.

    python bench/fleet_remediate.py --hosts 50 --forks 50 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_bench import FLEET_LAB, ROOT, container_ids, fleet_size, idle_rate, save_results, sh, targets_cpu  # noqa: E402

# what each remediable fault of lab/fleet/fleet-lab plants (its plant function), to plant again after a remediation
REPLANT = {
    "random_drop": [["iptables", "-w", "-I", "INPUT", "-p", "tcp", "--dport", "80", "-m", "statistic", "--mode", "random",
                     "--probability", "0.30", "-j", "DROP"],
                    ["iptables", "-w", "-I", "OUTPUT", "-p", "tcp", "--sport", "80", "-m", "statistic", "--mode",
                     "random", "--probability", "0.30", "-j", "DROP"]],
    "user_chain": [["iptables", "-w", "-A", "FLEET-CHAOS", "-m", "statistic", "--mode", "random", "--probability",
                    "0.20", "-j", "DROP"]],
    "ipv6_random_drop": [["ip6tables", "-w", "-I", "INPUT", "-p", "tcp", "--dport", "80", "-m", "statistic", "--mode",
                          "random", "--probability", "0.30", "-j", "DROP"]],
}


def faults(inventory: str, n: int) -> Dict[str, str]:
    import yaml  # the venv has it
    with open(inventory) as f:
        hosts = (yaml.safe_load(f) or {})["fleet"]["hosts"]
    return dict(("netdiag-fleet-%s" % h[len("fleet"):], v["fleet_fault"]) for h, v in sorted(hosts.items())[:n])


def random_drops(container: str) -> int:
    out = subprocess.run(["docker", "exec", container, "sh", "-c", "iptables-save; ip6tables-save"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if "--mode random" in line and "-j DROP" in line)


def replant(planted: Dict[str, str]) -> None:
    for container, fault in planted.items():
        if fault in REPLANT and random_drops(container) == 0:
            for argv in REPLANT[fault]:
                subprocess.run(["docker", "exec", container] + argv, check=True)


def collection_tree(rev: str, workdir: str) -> str:
    """A copy of the collection at git revision ``rev`` and a collections path holding it."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(tree)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=subprocess.PIPE, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    link = os.path.join(workdir, "collections", "ansible_collections", "netdiag")
    os.makedirs(link)
    os.symlink(tree, os.path.join(link, "packetloss"))
    return tree


def play(playbook: str, collections: Optional[str], inventory: str, n: int, forks: int, extra: Dict[str, object],
         ids: List[str], idle: Optional[float]) -> Dict[str, Optional[float]]:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections
    argv = ["ansible-playbook", playbook, "-i", inventory, "-f", str(forks), "--limit", "fleet[0:%d]" % (n - 1),
            "-e", json.dumps(extra)]
    ru0, tc0 = resource.getrusage(resource.RUSAGE_CHILDREN), targets_cpu(ids)
    start = time.monotonic()
    sh(argv, env)
    wall = round(time.monotonic() - start, 3)
    ru1, tc1 = resource.getrusage(resource.RUSAGE_CHILDREN), targets_cpu(ids)
    targets = round(tc1 - tc0 - idle * wall, 3) if tc0 is not None and tc1 is not None and idle is not None else None
    return {"wall": wall, "controller_cpu": round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), 3),
            "targets_cpu": targets}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--forks", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", default="main", help="git revision of the 'before' collection")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "fleet_remediate_results.json"))
    args = ap.parse_args()
    inventory = sh([FLEET_LAB, "inventory"]).strip()
    if fleet_size(inventory) < args.hosts:
        print("starting the fleet lab with %d hosts" % args.hosts, flush=True)
        sh([FLEET_LAB, "start", str(args.hosts)])
    n = args.hosts
    planted = faults(inventory, n)
    ids = container_ids(n)
    extra: Dict[str, object] = {"packetloss_hosts": "fleet"}
    runs: Dict[str, List[Dict[str, Optional[float]]]] = {"floor": [], "before": [], "after": [], "diagnose0": []}
    with tempfile.TemporaryDirectory(prefix="netdiag-remediate-bench-") as work:
        before_tree = collection_tree(args.before, work)
        plays = {"floor": (os.path.join(ROOT, "bench", "fleet_floor.yml"), None),
                 "before": (os.path.join(before_tree, "playbooks", "remediate.yml"), os.path.join(work, "collections")),
                 "after": (os.path.join(ROOT, "playbooks", "remediate.yml"), None),
                 "diagnose0": (os.path.join(ROOT, "playbooks", "diagnose.yml"), None)}
        play(plays["floor"][0], None, inventory, n, args.forks, {}, ids, None)  # warm the ControlPersist masters
        idle = idle_rate(ids)
        for _repeat in range(args.repeat):
            for name in ("floor", "diagnose0", "before", "after"):
                if name in ("before", "after"):
                    replant(planted)
                path, collections = plays[name]
                more = {"floor": {}, "diagnose0": dict(extra, packetloss_interval=0, packetloss_reports=False)}
                r = play(path, collections, inventory, n, args.forks, more.get(name, extra), ids, idle)
                if name in ("before", "after"):
                    left = [c for c, f in planted.items() if f in REPLANT and random_drops(c)]
                    assert not left, "random drops left after %s: %s" % (name, left)
                runs[name].append(r)
                print("%3d hosts  %-7s %7.2f s wall, CPU: controller %6.2f s, targets %s" % (
                    n, name, r["wall"], r["controller_cpu"],
                    "%6.2f s" % r["targets_cpu"] if r["targets_cpu"] is not None else "n/a"), flush=True)
    med = dict((k, dict((m, statistics.median([r[m] for r in v if r[m] is not None] or [0.0]))
                        for m in ("wall", "controller_cpu", "targets_cpu"))) for k, v in runs.items())
    ratios = {"before_over_floor": round(med["before"]["wall"] / med["floor"]["wall"], 2),
              "after_over_floor": round(med["after"]["wall"] / med["floor"]["wall"], 2),
              "diagnose0_over_floor": round(med["diagnose0"]["wall"] / med["floor"]["wall"], 2),
              "after_over_diagnose0": round(med["after"]["wall"] / med["diagnose0"]["wall"], 2)}
    data = {"hosts": n, "forks": args.forks, "repeat": args.repeat, "before": args.before,
            "faults": planted, "runs": runs, "median": med, "ratios": ratios}
    save_results(args.json, data, {"median": med, "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
