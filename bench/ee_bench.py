# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wall time of playbooks/diagnose.yml over the fleet lab inside the execution environment against outside it.

On one fleet (lab/fleet/fleet-lab start N, the default fleet), with the same forks, in one run, interleaved:

  outside       ansible-playbook with the work tree's collection, the SSH ControlPersist masters open (a ping first),
                as bench/fleet_bench.py measures it
  outside_cold  the same with every master closed first: each host's SSH handshake is part of the run
  ee            lab/ee/ee-image run: ansible-runner --container-image, the collection installed in the image; a new
                container each run, so no SSH master survives from one run to the next (as in AWX)

each with the default interval (5 s) and with interval 0 (one snapshot). Writes bench/ee_results.json.

    python bench/ee_bench.py --hosts 50 --repeat 3     # starts the fleet if it has fewer hosts; the EE is built
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_bench import FLEET_LAB, ROOT, fleet_size, save_results, sh  # noqa: E402  # pylint: disable=wrong-import-position

EE_IMAGE = os.path.join(ROOT, "lab", "ee", "ee-image")
PLACES = ("outside", "outside_cold", "ee")


def close_masters(inventory: str, n: int) -> None:
    """Ends the SSH ControlPersist masters of the first N hosts (ssh -O exit on the inventory's ControlPath)."""
    with open(inventory) as f:
        fleet = yaml.safe_load(f)["fleet"]
    args = fleet["vars"]["ansible_ssh_common_args"].split()
    path = [a for a in args if a.startswith("ControlPath=")][0]
    for host in list(fleet["hosts"].values())[:n]:
        subprocess.run(["ssh", "-O", "exit", "-o", path, "root@%s" % host["ansible_host"]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def timed(argv: List[str], env: Dict[str, str]) -> float:
    start = time.monotonic()
    sh(argv, env)
    return round(time.monotonic() - start, 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--forks", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="runs per place and interval (median reported)")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "ee_results.json"))
    ap.add_argument("--report-dir", default="/tmp/netdiag-ee-bench")
    args = ap.parse_args()
    image = sh([EE_IMAGE, "build"]).strip().splitlines()[-1]
    inventory = sh([FLEET_LAB, "inventory"]).strip()
    if fleet_size(inventory) < args.hosts:
        print("starting the fleet lab with %d hosts" % args.hosts, flush=True)
        sh([FLEET_LAB, "start", str(args.hosts)])
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               NETDIAG_EE_IMAGE=image)
    common = ["-f", str(args.forks), "--limit", "fleet[0:%d]" % (args.hosts - 1)]
    seconds: Dict[str, Dict[str, List[float]]] = dict((p, {"0": [], "5": []}) for p in PLACES)
    for _run in range(args.repeat):
        for interval in ("5", "0"):
            for place in PLACES:
                report_dir = os.path.join(args.report_dir, place, interval)
                os.makedirs(report_dir, exist_ok=True)
                extra = ["-e", json.dumps({"packetloss_interval": int(interval), "packetloss_report_dir": report_dir})]
                if place == "outside":
                    sh(["ansible-playbook", "bench/fleet_floor.yml", "-i", inventory] + common, env)  # warm masters
                else:
                    close_masters(inventory, args.hosts)
                if place == "ee":
                    argv = [EE_IMAGE, "run", "-v", report_dir, inventory, "playbooks/diagnose.yml"] + common + extra
                else:
                    argv = ["ansible-playbook", "playbooks/diagnose.yml", "-i", inventory] + common + extra
                wall = timed(argv, env)
                seconds[place][interval].append(wall)
                print("%3d hosts  interval %s  %-13s %7.2f s" % (args.hosts, interval, place, wall), flush=True)
    med = dict((p, dict((k, statistics.median(v)) for k, v in r.items())) for p, r in seconds.items())
    ratios = dict(("interval_%s" % k, {"ee_over_outside": round(med["ee"][k] / med["outside"][k], 2),
                                       "ee_over_outside_cold": round(med["ee"][k] / med["outside_cold"][k], 2),
                                       "ee_minus_outside_cold": round(med["ee"][k] - med["outside_cold"][k], 2)})
                  for k in ("5", "0"))
    size = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], stdout=subprocess.PIPE,
                              text=True, check=True).stdout)
    data = {"hosts": args.hosts, "forks": args.forks, "repeat": args.repeat, "image": image,
            "image_bytes": size, "seconds": seconds, "median": med, "ratios": ratios}
    save_results(args.json, data, {"median": med, "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
