# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment, built here and run: playbooks/diagnose.yml inside the EE (lab/ee/ee-image run:
ansible-runner --container-image, the collection installed in the image from its tarball) over real SSH to a fleet
lab of its own (NETDIAG_FLEET_ID 27, one host per fault of the cycle), against the same playbook outside it
(ansible-playbook with the work tree's collection). The reports must come out the same: the same files, the same
targets with the same layers read, the same findings (id, severity, subject; all but the info findings of
counters, which vary from run to run wherever Ansible runs) - timestamps and rates aside - and on every host
exactly the planted faults. Run by `scripts/test ee`, which builds the image first (cached)."""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLEET_LAB = os.path.join(ROOT, "lab", "fleet", "fleet-lab")
EE_IMAGE = os.path.join(ROOT, "lab", "ee", "ee-image")
FAULTS = "clean random_drop user_chain ipv6_random_drop tbf listen_overflow"
ENV = dict(os.environ, NETDIAG_FLEET_ID="27", NETDIAG_FLEET_FAULTS=FAULTS, ANSIBLE_NOCOLOR="1")


def run(argv: List[str], env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=ENV if env is None else env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)


@pytest.fixture(scope="module")
def image() -> str:
    proc = run([EE_IMAGE, "build"])
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Dict[str, Any]]:
    proc = run([FLEET_LAB, "start", str(len(FAULTS.split()))])
    try:
        assert proc.returncode == 0, proc.stdout
        inventory = run([FLEET_LAB, "inventory"]).stdout.strip()
        with open(inventory) as f:
            hosts = yaml.safe_load(f)["fleet"]["hosts"]
        yield {"inventory": inventory, "hosts": hosts}
    finally:
        run([FLEET_LAB, "stop"])


def report_set(report_dir: str) -> Tuple[List[str], Dict[Tuple[str, str], Dict[str, Any]]]:
    """The files of a report directory, and per (host, target) what must not depend on where Ansible ran."""
    files = sorted(os.path.relpath(os.path.join(d, f), report_dir) for d, _dirs, fs in os.walk(report_dir) for f in fs)
    targets = {}
    for rel in files:
        if os.path.dirname(rel) and rel.endswith(".json"):
            with open(os.path.join(report_dir, rel)) as f:
                doc = json.load(f)
            targets[(doc["host"], doc["label"])] = {
                "layers": {name: layer["state"] for name, layer in doc["layers"].items()},
                "findings": sorted((x["id"], x["severity"], x["subject"]) for x in doc["findings"] if stable(x)),
                "counts": {sev: doc["counts"][sev] for sev in ("warning", "critical")},
            }
    return files, targets


def stable(finding: Dict[str, Any]) -> bool:
    """Whether a finding must be the same in two runs: those from the configuration or a gauge (a rule, a qdisc,
    conntrack usage), and every one above info. An info finding from a counter or a symptom counts what the traffic
    did in that interval: a host with a listen-queue overflow showed tcp.retrans (info) in one of two runs outside
    any EE, so they are not compared."""
    return finding["kind"] in ("config", "gauge") or finding["severity"] != "info"


def planted(hosts: Dict[str, Any], targets: Dict[Tuple[str, str], Dict[str, Any]]) -> Dict[str, List[str]]:
    """Per host, the ids found at warning or above against the ids planted: equal when diagnose found the faults."""
    out = {}
    for host, hv in hosts.items():
        found = sorted(i for i, sev, _subject in targets[(host, "host")]["findings"] if sev in ("warning", "critical"))
        want = sorted(e["id"] for e in hv["fleet_expected_findings"])
        out[host] = [found == want, found, want]
    return out


def test_diagnose_inside_the_ee_reports_as_outside(image, fleet, tmp_path) -> None:
    outside, inside = str(tmp_path / "outside"), str(tmp_path / "inside")
    os.makedirs(inside)
    proc = run(["ansible-playbook", "playbooks/diagnose.yml", "-i", fleet["inventory"],
                "-e", "packetloss_report_dir=%s" % outside])
    assert proc.returncode == 0, proc.stdout[-4000:]
    # -v: ansible-playbook names its configuration, which shows where it ran; the work tree is not mounted in the
    # container, so the collection it ran is the one installed in the image
    proc = run([EE_IMAGE, "run", "-v", inside, fleet["inventory"], "playbooks/diagnose.yml", "-v",
                "-e", "packetloss_report_dir=%s" % inside], env=dict(ENV, NETDIAG_EE_IMAGE=image))
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "Using /runner/project/ansible.cfg as config file" in proc.stdout, proc.stdout[:3000]

    files_out, targets_out = report_set(outside)
    files_in, targets_in = report_set(inside)
    assert files_in == files_out
    assert sorted(targets_in) == sorted(targets_out) == sorted((h, "host") for h in fleet["hosts"])
    for key in sorted(targets_out):
        assert targets_in[key] == targets_out[key], key
    for where, targets in (("outside", targets_out), ("inside", targets_in)):
        for host, (ok, found, want) in planted(fleet["hosts"], targets).items():
            assert ok, (where, host, fleet["hosts"][host]["fleet_fault"], found, want)
    with open(os.path.join(outside, "summary.json")) as f:
        summary_out = json.load(f)
    with open(os.path.join(inside, "summary.json")) as f:
        summary_in = json.load(f)
    for key in ("hosts", "targets", "not_read"):
        assert summary_in[key] == summary_out[key], key
    for sev in ("warning", "critical"):
        assert summary_in["counts"][sev] == summary_out["counts"][sev], (summary_in["counts"], summary_out["counts"])
