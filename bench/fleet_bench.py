# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wall time of diagnose.yml over the fleet lab against Ansible's own floor and a naive command-task playbook.

On one fleet (lab/fleet/fleet-lab start MAX), with the same forks, in one run, for each host count N:

  floor      bench/fleet_floor.yml: ansible.builtin.ping once per host
  diagnose0  playbooks/diagnose.yml with packetloss_interval 0 (one snapshot)
  diagnose   playbooks/diagnose.yml with the default interval (two snapshots, 5 s apart)
  naive      bench/fleet_naive.yml: the seed's walk as 7 ansible.builtin.command tasks, output registered
  diagnose0_nonetlink  diagnose0 with packetloss_gather_subset [iptables, conntrack]: without the two layers that
                       read rtnetlink (tc, netstat), to show what they cost (they used pyroute2 until its import
                       turned out to be most of the fact module's CPU time; now a plain AF_NETLINK socket)

Before each N a ping warms the SSH ControlPersist masters of those hosts, so every playbook starts from the same
connection state. Writes bench/fleet_results.json and the plot docs/fleet-bench.svg (drawn here, no plotting library).

    python bench/fleet_bench.py --hosts 5,10,20,30,50 --forks 50   # starts the fleet if it has fewer hosts
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLEET_LAB = os.path.join(ROOT, "lab", "fleet", "fleet-lab")
PLAYS = ("floor", "diagnose0", "diagnose0_nonetlink", "diagnose", "naive")
LABELS = {"floor": "floor (ping)", "diagnose0": "diagnose.yml, interval 0", "diagnose": "diagnose.yml, interval 5 s",
          "diagnose0_nonetlink": "diagnose.yml, interval 0, no tc/netstat", "naive": "naive (7 command tasks)"}
COLORS = {"floor": "#555555", "diagnose0": "#1f77b4", "diagnose": "#2ca02c", "naive": "#d62728",
          "diagnose0_nonetlink": "#9467bd"}


def sh(argv: List[str], env: Optional[Dict[str, str]] = None) -> str:
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s" % (" ".join(argv), proc.returncode, proc.stdout[-3000:]))
    return proc.stdout


def fleet_size(inventory: str) -> int:
    if not os.path.exists(inventory):
        return 0
    import yaml  # the venv has it
    with open(inventory) as f:
        return len((yaml.safe_load(f) or {}).get("fleet", {}).get("hosts", {}))


CGROUP_CPU = ("/sys/fs/cgroup/docker/%s/cpu.stat", "/sys/fs/cgroup/system.slice/docker-%s.scope/cpu.stat",
              "/sys/fs/cgroup/unified/docker/%s/cpu.stat")


def container_ids(n: int) -> List[str]:
    """The ids of the containers of fleet01..fleetN (the default fleet's names), [] when they are not all there."""
    wanted = ["netdiag-fleet-%02d" % i for i in range(1, n + 1)]
    proc = subprocess.run(["docker", "inspect", "-f", "{{.Id}}"] + wanted, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, check=False)
    ids = proc.stdout.split()
    return ids if proc.returncode == 0 and len(ids) == n else []


def targets_cpu(ids: List[str]) -> Optional[float]:
    """CPU seconds the containers have used (their cgroups' usage_usec), None where it cannot be read."""
    total = 0.0
    for cid in ids:
        for pattern in CGROUP_CPU:
            try:
                with open(pattern % cid) as f:
                    total += int(dict(line.split() for line in f)["usage_usec"]) / 1e6
                break
            except (OSError, KeyError, ValueError):
                continue
        else:
            return None
    return total


def idle_rate(ids: List[str], seconds: float = 5.0) -> Optional[float]:
    """CPU seconds per second the containers use with no playbook running (the fault generators of some hosts)."""
    before = targets_cpu(ids)
    time.sleep(seconds)
    after = targets_cpu(ids)
    return (after - before) / seconds if ids and before is not None and after is not None else None


def playbook(name: str, inventory: str, n: int, forks: int, extra: Dict[str, object],
             ids: Optional[List[str]] = None, idle: Optional[float] = None) -> Dict[str, Optional[float]]:
    """Wall seconds, and CPU seconds of the controller (ansible-playbook and every process it waited for: workers,
    ssh clients) and of the N target containers (less what they use idle over the same wall time)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    argv = ["ansible-playbook", name, "-i", inventory, "-f", str(forks), "--limit", "fleet[0:%d]" % (n - 1),
            "-e", json.dumps(extra)]
    ru0, tc0 = resource.getrusage(resource.RUSAGE_CHILDREN), targets_cpu(ids or [])
    start = time.monotonic()
    sh(argv, env)
    wall = round(time.monotonic() - start, 3)
    ru1, tc1 = resource.getrusage(resource.RUSAGE_CHILDREN), targets_cpu(ids or [])
    controller = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    targets = None
    if ids and tc0 is not None and tc1 is not None and idle is not None:
        targets = round(tc1 - tc0 - idle * wall, 3)
    return {"wall": wall, "controller_cpu": round(controller, 3), "targets_cpu": targets}


def run(hosts: List[int], forks: int, interval: float, repeat: int, inventory: str, report_dir: str) -> Dict[str, object]:
    results: Dict[str, Dict[str, List[float]]] = dict((p, {}) for p in PLAYS)
    cpu: Dict[str, Dict[str, List[Dict[str, Optional[float]]]]] = dict((p, {}) for p in PLAYS)
    for n in hosts:
        ids = container_ids(n)
        playbook("bench/fleet_floor.yml", inventory, n, forks, {})  # warm the ControlPersist masters
        idle = idle_rate(ids)
        for _run in range(repeat):
            for play in PLAYS:
                if play == "floor":
                    r = playbook("bench/fleet_floor.yml", inventory, n, forks, {}, ids, idle)
                elif play == "naive":
                    r = playbook("bench/fleet_naive.yml", inventory, n, forks, {}, ids, idle)
                else:
                    extra: Dict[str, object] = {"packetloss_interval": interval if play == "diagnose" else 0,
                                                "packetloss_report_dir": os.path.join(report_dir, play)}
                    if play == "diagnose0_nonetlink":
                        extra["packetloss_gather_subset"] = ["iptables", "conntrack"]
                    r = playbook("playbooks/diagnose.yml", inventory, n, forks, extra, ids, idle)
                results[play].setdefault(str(n), []).append(r["wall"])  # type: ignore[arg-type]
                cpu[play].setdefault(str(n), []).append(r)
                print("%3d hosts  %-20s %7.2f s wall, CPU: controller %6.2f s, targets %s" % (
                    n, play, r["wall"], r["controller_cpu"],
                    "%6.2f s" % r["targets_cpu"] if r["targets_cpu"] is not None else "n/a"), flush=True)
    med = dict((p, dict((k, statistics.median(v)) for k, v in r.items())) for p, r in results.items())
    cpu_med: Dict[str, Dict[str, Dict[str, Optional[float]]]] = {}
    for p, per_n in cpu.items():
        cpu_med[p] = {}
        for k, runs in per_n.items():
            cpu_med[p][k] = {}
            for key in ("controller_cpu", "targets_cpu"):
                values = [r[key] for r in runs if r[key] is not None]
                cpu_med[p][k][key] = round(statistics.median(values), 3) if values else None
    ratios = {}
    for k in med["floor"]:
        f, d0, d5, nv = med["floor"][k], med["diagnose0"][k], med["diagnose"][k], med["naive"][k]
        ratios[k] = {"diagnose0_over_floor": round(d0 / f, 2),
                     "diagnose0_nonetlink_over_floor": round(med["diagnose0_nonetlink"][k] / f, 2),
                     "diagnose_over_floor_plus_interval": round(d5 / (f + interval), 2),
                     "naive_over_diagnose0": round(nv / d0, 2),
                     "naive_over_diagnose": round(nv / d5, 2),
                     "diagnose0_over_floor_controller_cpu": round(
                         (cpu_med["diagnose0"][k]["controller_cpu"] or 0) / (cpu_med["floor"][k]["controller_cpu"] or 1), 2)}
    return {"hosts": hosts, "forks": forks, "interval": interval, "repeat": repeat, "seconds": results, "median": med,
            "ratios": ratios, "cpu_seconds_median": cpu_med}


def save_results(path: str, data: Dict[str, Any], shown: Any) -> None:
    """Every fleet bench's results: DATA with the machine's state (cpus, load, date) as JSON at PATH; SHOWN printed."""
    data.update({"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps(shown, indent=2))


def svg(data: Dict[str, object]) -> str:
    """Wall time vs hosts, one line per playbook: a small hand-written SVG."""
    med: Dict[str, Dict[str, float]] = data["median"]  # type: ignore[assignment]
    hosts = sorted(int(k) for k in med["floor"])
    w, h, left, right, top, bottom = 820, 420, 60, 310, 40, 50
    xmax = max(hosts)
    ymax = max(max(v.values()) for v in med.values())
    step = 10 if ymax <= 100 else 20 if ymax <= 200 else 50
    ymax = (int(ymax / step) + 1) * step

    def x(n: float) -> float:
        return left + (w - left - right) * n / xmax

    def y(s: float) -> float:
        return h - bottom - (h - top - bottom) * s / ymax

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="12">' % (w, h, w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="14" font-weight="bold">Wall time vs hosts (forks %s, %s CPUs)</text>'
           % (left, data["forks"], data["cpus"])]
    for s in range(0, ymax + 1, step):
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/>' % (left, y(s), w - right, y(s)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%d</text>' % (left - 6, y(s) + 4, s))
    for n in hosts:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999999"/>' % (x(n), h - bottom, x(n), h - bottom + 5))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x(n), h - bottom + 18, n))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, h - bottom, w - right, h - bottom))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top, left, h - bottom))
    out.append('<text x="%.1f" y="%d" text-anchor="middle">hosts</text>' % ((left + w - right) / 2, h - 10))
    out.append('<text x="16" y="%.1f" text-anchor="middle" transform="rotate(-90 16 %.1f)">seconds</text>'
               % ((top + h - bottom) / 2, (top + h - bottom) / 2))
    for i, play in enumerate(PLAYS):
        pts = " ".join("%.1f,%.1f" % (x(n), y(med[play][str(n)])) for n in hosts)
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>' % (pts, COLORS[play]))
        for n in hosts:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (x(n), y(med[play][str(n)]), COLORS[play]))
        ly = top + 20 + 22 * i
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                   % (w - right + 15, ly, w - right + 40, ly, COLORS[play]))
        out.append('<text x="%d" y="%d">%s</text>' % (w - right + 46, ly + 4, LABELS[play]))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", default="5,10,20,30,50", help="host counts, comma-separated")
    ap.add_argument("--forks", type=int, default=50)
    ap.add_argument("--interval", type=float, default=5.0, help="diagnose's default interval")
    ap.add_argument("--repeat", type=int, default=1, help="runs per playbook and host count (median reported)")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "fleet_results.json"))
    ap.add_argument("--svg", default=os.path.join(ROOT, "docs", "fleet-bench.svg"))
    ap.add_argument("--report-dir", default="/tmp/netdiag-fleet-bench")
    args = ap.parse_args()
    hosts = sorted(int(h) for h in args.hosts.split(","))
    inventory = sh([FLEET_LAB, "inventory"]).strip()
    if fleet_size(inventory) < max(hosts):
        print("starting the fleet lab with %d hosts" % max(hosts), flush=True)
        sh([FLEET_LAB, "start", str(max(hosts))])
    data = run(hosts, args.forks, args.interval, args.repeat, inventory, args.report_dir)
    with open(args.svg, "w") as f:
        f.write(svg(data))
    save_results(args.json, data, data["ratios"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
