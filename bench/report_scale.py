# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the diagnose role's report and summary tasks cost on the controller at fleet scale (issue 13).

A fleet of HOSTS x TARGETS is built from the real snapshots of the unit tests (tests/unit/plugins/module_utils/
cases/analyze_base.yml, the host lab's facts, patched by the analyzer's own cases) through the collection's own
_diagnosis.host_diagnosis: per host the host target and TARGETS-1 containers; 5 % of the targets critical (one container per
host, a cause from a rotation of critical cases), 10 % warning (two containers), some info (tcp symptoms, which name
their causes in explained_by), the rest clean, and one host in fifty with a layer not read.

Then, in one run:

  baseline  the same report functions the role runs (_report.target_files, fleet_files, console_summary) on the
            plain dicts, in this process: the floor
  role      a real ansible-playbook run over an inventory of HOSTS hosts (connection local, no fact module: each
            host's prepared diagnosis is its packetloss_diagnosis, set from a JSON file per host by set_fact) that
            runs the diagnose role's report and summary tasks (tasks_from: report); their wall time per task is taken
            by a callback in bench/callback_plugins, the peak RSS of the run by getrusage of its process tree

and prints medians and the ratio role / baseline. The HTML's size is printed too; the browser's load time is
measured by tests/integration/test_report_browser.py.

    python bench/report_scale.py --hosts 1000 --targets 20 --repeat 1       # the issue's size
    python bench/report_scale.py --hosts 100 --targets 10 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Tuple

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES_DIR = os.path.join(ROOT, "tests", "unit", "plugins", "module_utils", "cases")
COLLECTIONS = os.path.join(ROOT, ".ansible", "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import diagnosis as _diagnosis  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report  # noqa: E402  pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(CASES_DIR))  # the analyzer's tests build the snapshots from the cases
import test_analyze  # noqa: E402  pylint: disable=wrong-import-position,import-error

# the analyzer's cases whose patches make a container's severity: (case id, the label in it whose spec is used)
CRITICAL = ("random-drop-input-and-output-the-seeds-case", "nic-fifo-missed-errors-tx", "ip-routes-fragments-reverse-path",
            "conntrack-at-its-limit-and-dropping", "qdisc-netem-duplicate-and-corrupt-are-critical")
WARNING = ("conntrack-insert-failed-few", "udp-send-buffer-and-checksum-errors", "qdisc-netem-delay-only-is-a-warning",
           "qdisc-drops-few-is-a-warning")
INFO = ("tcp-symptoms-unexplained", "nic-rx-dropped-trickle-is-info", "tcp-attempt-fails-active")
HOST_SPEC = "tcp-symptoms-unexplained"  # the host target's symptoms name every cause of the host
T0 = 1795740662.0


def _load(name: str) -> Any:
    with open(os.path.join(CASES_DIR, name)) as f:
        return yaml.safe_load(f)


class Fleet:
    """Synthetic fleets from the real snapshots."""

    def __init__(self) -> None:
        self.cases = dict((c["id"], c) for c in _load("analyze.yml")["cases"])

    def spec(self, case_id: str) -> Dict[str, Any]:
        targets = self.cases[case_id].get("targets") or {}
        return targets.get("container:nginx") or targets.get("host") or {}

    def snapshot(self, label: str, spec: Dict[str, Any], which: str, ts: float) -> Dict[str, Any]:
        """One snapshot of ``label`` as the analyzer's unit tests build it (tests/unit/.../test_analyze.py)."""
        return test_analyze.snapshot(label, spec, which, ts)

    def host(self, index: int, targets: int, interval: float = 5.0) -> Dict[str, Any]:
        """The diagnosis of host number ``index``: container 1 critical, 2 and 3 warning (5 % and 10 % at 20
        targets), every fourth of the rest info, the host target's tcp symptoms info; every 50th host has its
        netfilter layer unread on one container."""
        before: Dict[str, Any] = {}
        after: Dict[str, Any] = {}
        per_crit = max(1, round(targets * 0.05))
        per_warn = max(1, round(targets * 0.10))
        for t in range(targets):
            label = "host" if t == 0 else "container:c%03d" % t
            if t == 0:
                case = HOST_SPEC
            elif t <= per_crit:
                case = CRITICAL[(index + t) % len(CRITICAL)]
            elif t <= per_crit + per_warn:
                case = WARNING[(index + t) % len(WARNING)]
            elif t % 4 == 0:
                case = INFO[(index + t) % len(INFO)]
            else:
                case = None
            spec = self.spec(case) if case else {}
            before[label] = self.snapshot(label, spec, "before", T0)
            after[label] = self.snapshot(label, spec, "after", T0 + interval)
            if index % 50 == 7 and t == targets - 1:
                for snap in (before, after):
                    snap[label]["iptables"] = {"available": False, "reason": "iptables-nft-save: not installed",
                                               "cause": "missing_binary"}
        return _diagnosis.host_diagnosis(before, after, interval, host="host%04d" % index,
                                         generated_at="2026-11-30T00:00:00+00:00")

    def build(self, hosts: int, targets: int) -> List[Dict[str, Any]]:
        return [self.host(i, targets) for i in range(hosts)]


def report_work(diagnoses: List[Dict[str, Any]], report_dir: str, worst: int = 20) -> Tuple[List[Dict[str, str]], str]:
    """What the role's two tasks compute, on plain data (the baseline)."""
    return _report.report_set(diagnoses, report_dir, "warning", 0.0, worst)


def write_files(dest: str, files: List[Dict[str, str]]) -> None:
    for f in files:
        path = os.path.join(dest, f["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f["content"])


PLAYBOOK = """---
- name: Feed the prepared diagnoses as host facts (not measured)
  hosts: all
  gather_facts: false
  tasks:
    - name: The host's diagnosis, as the diagnose task sets it (ansible_facts)
      load_diagnosis:
        src: "{{ fleet_dir }}/{{ inventory_hostname }}.json"

- name: The diagnose role's report and summary tasks (measured)
  hosts: all
  gather_facts: false
  tasks:
    - name: Reports and summary
      ansible.builtin.import_role:
        name: netdiag.packetloss.diagnose
        tasks_from: report
    # so that the end of the play (Ansible's implicit tasks over every host) is not counted as the summary task's
    - name: After the role (not measured)
      ansible.builtin.debug:
        msg: end
      run_once: true
"""


def run_role(fleet_dir: str, hosts: List[str], report_dir: str, forks: int = 4) -> Dict[str, Any]:
    work = tempfile.mkdtemp(prefix="report-scale-")
    inventory = os.path.join(work, "inventory.yml")
    with open(inventory, "w") as f:
        yaml.safe_dump({"all": {"hosts": dict((h, None) for h in hosts), "vars": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "fleet_dir": fleet_dir,
            "packetloss_report_dir": report_dir}}}, f)
    playbook = os.path.join(work, "play.yml")
    with open(playbook, "w") as f:
        f.write(PLAYBOOK)
    times = os.path.join(work, "times.json")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "bench", "callback_plugins"),
               ANSIBLE_ACTION_PLUGINS=os.path.join(ROOT, "bench", "action_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="task_times", TASK_TIMES_FILE=times, ANSIBLE_FORKS=str(forks),
               ANSIBLE_NOCOLOR="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", inventory, playbook], cwd=work, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    wall = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit("ansible-playbook failed (%d):\n%s" % (proc.returncode, proc.stdout[-5000:]))
    with open(times) as f:
        tasks = json.load(f)
    summary_lines = proc.stdout[proc.stdout.find("Print the findings"):].count("\n")
    return {"tasks": tasks, "wall": wall, "peak_rss_mb": peak / 1024.0 if peak > before else None,
            "console_lines": summary_lines, "console_bytes": len(proc.stdout)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1, help="runs of the role (and of the baseline); medians are printed")
    ap.add_argument("--baseline-only", action="store_true")
    ap.add_argument("--keep", help="directory to keep the fleet and the reports in")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="report-scale-")
    fleet_dir = os.path.join(work, "fleet")
    os.makedirs(fleet_dir, exist_ok=True)
    t = time.monotonic()
    diagnoses = Fleet().build(args.hosts, args.targets)
    build_s = time.monotonic() - t
    for d in diagnoses:
        with open(os.path.join(fleet_dir, "%s.json" % d["host"]), "w") as f:
            f.write(_report.dump_json(d))
    worst: Dict[str, int] = {}
    for d in diagnoses:
        for tgt in d["targets"].values():
            key = tgt["worst"] or "clean"
            worst[key] = worst.get(key, 0) + 1
    n = args.hosts * args.targets
    print("fleet %d x %d built in %.1f s: targets by worst %s; diagnosis JSON %.1f MB" % (
        args.hosts, args.targets, build_s, ", ".join("%s %d (%.1f%%)" % (k, v, 100.0 * v / n) for k, v in sorted(worst.items())),
        sum(os.path.getsize(os.path.join(fleet_dir, p)) for p in os.listdir(fleet_dir)) / 1e6))
    base_times, base_cpu = [], []
    for _run in range(args.repeat):
        plain = [_read_json(os.path.join(fleet_dir, "%s.json" % d["host"])) for d in diagnoses]  # what the role gets
        shutil.rmtree(os.path.join(work, "reports-baseline"), ignore_errors=True)
        t, c = time.monotonic(), time.process_time()
        files, console = report_work(plain, os.path.join(work, "reports-baseline"))
        write_files(os.path.join(work, "reports-baseline"), files)  # the same work: the files written too
        base_times.append(time.monotonic() - t)
        base_cpu.append(time.process_time() - c)
    html = next(f["content"] for f in files if f["path"] == "report.html")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result: Dict[str, Any] = {"hosts": args.hosts, "targets": args.targets, "baseline_s": statistics.median(base_times),
                              "baseline_cpu_s": statistics.median(base_cpu), "load_average": os.getloadavg(),
                              "baseline_runs": base_times, "bench_process_peak_rss_mb": rss,
                              "html_mb": len(html.encode()) / 1e6, "files": len(files),
                              "console_lines": console.count("\n") + 1, "console_bytes": len(console)}
    if not args.baseline_only:
        runs = [run_role(fleet_dir, [d["host"] for d in diagnoses], os.path.join(work, "reports-role"))
                for _run in range(args.repeat)]
        report_s = [_task(r, "Write the per-target JSON reports") for r in runs]
        summary_s = [_task(r, "Print the findings above info") for r in runs]
        both = [a + b for a, b in zip(report_s, summary_s)]
        cpu = [_task(r, "Write the per-target JSON reports", "cpu") + _task(r, "Print the findings above info", "cpu") for r in runs]
        mem = [_task(r, "Print the findings above info", "memory") for r in runs]
        feed = [_task(r, "The host's diagnosis", "memory") for r in runs]
        own = [_task(r, "Write the per-target JSON reports", "own") + _task(r, "Print the findings above info", "own") for r in runs]
        result.update(report_task_s=statistics.median(report_s), summary_task_s=statistics.median(summary_s),
                      report_task_own_s=statistics.median(_task(r, "Write the per-target JSON reports", "own") for r in runs),
                      summary_task_own_s=statistics.median(_task(r, "Print the findings above info", "own") for r in runs),
                      role_own_s=statistics.median(own), ratio_own=statistics.median(own) / result["baseline_s"],
                      role_s=statistics.median(both), role_runs=both, ratio=statistics.median(both) / result["baseline_s"],
                      role_cpu_s=statistics.median(cpu), ratio_cpu=statistics.median(cpu) / result["baseline_cpu_s"],
                      run_wall_s=statistics.median(r["wall"] for r in runs),
                      run_peak_rss_mb=max((r["peak_rss_mb"] or 0) for r in runs),
                      controller_rss_mb_after_feed=max(m["main_rss_mb"] for m in feed),
                      controller_rss_mb_after_reports=max(m["main_rss_mb"] for m in mem),
                      workers_max_rss_mb_after_feed=max(m["workers_max_rss_mb"] for m in feed),
                      workers_max_rss_mb_after_reports=max(m["workers_max_rss_mb"] for m in mem),
                      role_console_lines=runs[0]["console_lines"],
                      end_of_play_s=statistics.median(_task(r, "After the role") for r in runs))
        same = _compare(os.path.join(work, "reports-baseline"), os.path.join(work, "reports-role"))
        result["role_reports_equal_baseline"] = same
    print(json.dumps(result, indent=1, sort_keys=True))


def _read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def _task(run: Dict[str, Any], prefix: str, what: str = "wall") -> Any:
    """A task's wall or cpu time, or its memory (the callback names role tasks "ROLE : NAME")."""
    return next(v for k, v in run["tasks"][what].items() if k.split(" : ")[-1].startswith(prefix))


RUN_KEYS = ("run", "runs", "diagnoses", "missing")


def _compare(a: str, b: str) -> bool:
    """The role wrote the same files as the baseline (report.html and the summaries carry no timestamps of their
    own: generated_at is the diagnoses'), but for what the JSON reports say of the run for a merge (RUN_KEYS: the
    run's id and time, each run its own; the baseline renders without a run record)."""
    names = []
    for root, _dirs, files in os.walk(a):
        names += [os.path.relpath(os.path.join(root, f), a) for f in files]
    for name in names:
        with open(os.path.join(a, name)) as x, open(os.path.join(b, name)) as y:
            left, right = x.read().replace(a, b), y.read()
            if name.endswith(".json"):
                left, right = (json.dumps({k: v for k, v in json.loads(t).items() if k not in RUN_KEYS}, sort_keys=True)
                               for t in (left, right))
            if left != right:
                print("differs: %s" % name)
                return False
    return True


if __name__ == "__main__":
    main()
