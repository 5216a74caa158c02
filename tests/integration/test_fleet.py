"""The fleet lab over real SSH: a small fleet of its own (NETDIAG_FLEET_ID 29, four hosts: clean, a random-drop rule
in a user chain, a dropping tbf, a listen-queue overflow); diagnose.yml finds exactly the planted faults on each
host and nothing on the clean one, and compliance.yml fails exactly the faulty hosts; and two Debian bullseye hosts
(ID 28: Python 3.9) are diagnosed with every layer read. The hosts have Python's standard library and no other
Python library (no pyroute2). About a minute (``pytest -k 'not fleet'`` leaves it out)."""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml

from conftest import ROOT, ok, play_task

FLEET_LAB = os.path.join(ROOT, "lab", "fleet", "fleet-lab")
ENV = dict(os.environ, NETDIAG_FLEET_ID="29", NETDIAG_FLEET_FAULTS="clean user_chain tbf listen_overflow")
# Debian bullseye hosts: Python 3.9, the oldest targets the modules are meant to run on
OLD_ENV = dict(os.environ, NETDIAG_FLEET_ID="28", NETDIAG_FLEET_FAULTS="random_drop clean",
               NETDIAG_FLEET_SUITE="bullseye")


def start_fleet(env: Dict[str, str], n: int) -> Iterator[Dict[str, Any]]:
    proc = subprocess.run([FLEET_LAB, "start", str(n)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    try:
        assert proc.returncode == 0, proc.stdout
        inventory = subprocess.run([FLEET_LAB, "inventory"], env=env, stdout=subprocess.PIPE, text=True,
                                   check=True).stdout.strip()
        with open(inventory) as f:
            hosts = yaml.safe_load(f)["fleet"]["hosts"]
        yield {"inventory": inventory, "hosts": hosts}
    finally:
        subprocess.run([FLEET_LAB, "stop"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Dict[str, Any]]:
    yield from start_fleet(ENV, 4)


@pytest.fixture(scope="module")
def old_fleet() -> Iterator[Dict[str, Any]]:
    yield from start_fleet(OLD_ENV, 2)


def playbook(name: str, inventory: str, tmp_path, *args: str, **extra: Any) -> Tuple[int, str]:
    extra.setdefault("packetloss_report_dir", str(tmp_path / "reports"))
    vars_file = tmp_path / "extra-vars.json"
    vars_file.write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", os.path.join("playbooks", name), "-i", inventory, "-e", "@%s" % vars_file]
                          + list(args),
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    return proc.returncode, proc.stdout


def planted(expected: List[Dict[str, Any]]) -> List[Tuple[Any, ...]]:
    return sorted((e["id"], e.get("family"), e.get("chain")) for e in expected)


def found(findings: List[Dict[str, Any]]) -> List[Tuple[Any, ...]]:
    out = []
    for f in findings:
        if f["severity"] in ("warning", "critical"):
            rule = f["evidence"].get("rule") or {}
            out.append((f["id"], rule.get("family"), rule.get("chain")))
    return sorted(out)


def assert_planted_found(fleet: Dict[str, Any], tmp_path) -> List[Dict[str, Any]]:
    """Every host's report has exactly its planted findings (warning or above) and every layer read (drops n/a without
    tracefs); the reports."""
    docs = []
    for host, hv in fleet["hosts"].items():
        with open(tmp_path / "reports" / host / "host.json") as f:
            doc = json.load(f)
        assert found(doc["findings"]) == planted(hv["fleet_expected_findings"]), (host, hv["fleet_fault"], doc["findings"])
        for name, c in doc["layers"].items():
            if name == "drops" and os.environ.get("NETDIAG_FLEET_TRACEFS") != "1":
                # the lab's hosts are containers without tracefs (fleet-lab): no drop reasons, shown n/a with why
                assert not c["available"] and c["state"] == "unread" and c["reason"], (host, name, c)
            else:
                assert c["available"], (host, name, c)
        docs.append(doc)
    return docs


def test_diagnose_finds_exactly_the_planted_faults(fleet, tmp_path) -> None:
    rc, out = playbook("diagnose.yml", fleet["inventory"], tmp_path)
    assert rc == 0, out[-4000:]
    assert_planted_found(fleet, tmp_path)
    # the containers are the hosts: no container targets
    assert sorted(os.listdir(tmp_path / "reports" / "fleet01")) == ["host.json"]


def test_python_3_9_targets_are_diagnosed_with_every_layer(old_fleet, tmp_path) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    versions = subprocess.run(["ansible", "fleet", "-i", old_fleet["inventory"], "-m", "ansible.builtin.command",
                               "-a", "python3 -c 'import sys, importlib.util as u; print(sys.version_info[:2], u.find_spec(\"pyroute2\"))'"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert versions.returncode == 0 and versions.stdout.count("(3, 9) None") == 2, versions.stdout
    rc, out = playbook("diagnose.yml", old_fleet["inventory"], tmp_path, packetloss_interval=1)
    assert rc == 0, out[-4000:]
    for doc in assert_planted_found(old_fleet, tmp_path):
        assert doc["interval"] >= 1


def test_prerequisites_on_a_host_without_docker_install_nothing(old_fleet) -> None:
    host = sorted(old_fleet["hosts"])[0]
    r = ok(play_task(old_fleet["inventory"], host, "netdiag.packetloss.diagnose", interval=0, containers=["all"],
                     install_prerequisites=True))
    assert r["changed"] is False, r
    assert r["prerequisites"] == {"changed": False, "packages": [], "docker_sdk": "not_needed"}, r


def test_docker_host_without_the_sdk_is_reported_and_its_sdk_installed(fleet) -> None:
    """A fleet host made to look like a Docker host (its socket path exists) without the Docker SDK: the containers
    are reported as not diagnosed, and install_prerequisites goes to apt for python3-docker (in check mode: the
    hosts have no apt lists and no way out, and the apt module says it needs python3-apt for check mode)."""
    host = "fleet01"
    ok(play_task(fleet["inventory"], host, "ansible.builtin.file", path="/var/run/docker.sock", state="touch"))
    try:
        r = ok(play_task(fleet["inventory"], host, "netdiag.packetloss.diagnose", interval=0, containers=["all"]))
        assert any("containers not diagnosed" in w and "Docker SDK" in w for w in r.get("warnings", [])), r
        assert r["ansible_facts"]["packetloss_diagnosis"]["host"] == host
        r = play_task(fleet["inventory"], host, "netdiag.packetloss.diagnose", check=True, interval=0,
                      containers=["all"], install_prerequisites=True)
        assert r.get("failed") and "apt could not install python3-docker" in r["msg"], r
    finally:
        play_task(fleet["inventory"], host, "ansible.builtin.file", path="/var/run/docker.sock", state="absent")


def test_compliance_fails_exactly_the_faulty_hosts(fleet, tmp_path) -> None:
    rc, out = playbook("compliance.yml", fleet["inventory"], tmp_path, packetloss_interval=3)
    assert rc == 2, out[-4000:]
    with open(tmp_path / "reports" / "compliance.json") as f:
        summary = json.load(f)
    faulty = sorted(h for h, hv in fleet["hosts"].items() if hv["fleet_expected_findings"])
    assert summary["failed_hosts"] == faulty and summary["passed_hosts"] == ["fleet01"], summary
    prom = (tmp_path / "reports" / "packetloss.prom").read_text()
    assert 'packetloss_host_compliant{host="fleet03"} 0' in prom
    assert any(l.startswith('packetloss_counter_rate_per_second{host="fleet03",target="host",counter="qdisc_drops"}')
               and float(l.split()[-1]) > 0 for l in prom.splitlines())


def report_set(directory) -> Tuple[Dict[str, Any], Dict[Tuple[str, str], Dict[str, Any]]]:
    """summary.json and the per-target JSON of a report set, by (host, target)."""
    with open(directory / "summary.json") as f:
        summary = json.load(f)
    targets = {}
    for row in summary["rows"]:
        with open(directory / row["host"] / ("%s.json" % row["target"].replace(":", "_"))) as f:
            targets[(row["host"], row["target"])] = json.load(f)
    return summary, targets


def findings_of(targets: Dict[Tuple[str, str], Dict[str, Any]]) -> List[Tuple[Any, ...]]:
    """Every finding of warning or above - host, target, id, subject, and the severity of configuration findings -
    timestamps and rates aside: the severity of a counter finding comes from its rate over the interval (a dropping
    tbf may be a warning in one run and critical in the next), and info findings come and go with the traffic of the
    moment (a retransmission or two)."""
    return sorted((host, target, f["id"], f["subject"], f["severity"] if f["kind"] == "config" else "rate")
                  for (host, target), t in targets.items() for f in t["findings"] if f["severity"] in ("warning", "critical"))


def heat_map_hosts(page: str) -> List[str]:
    """Every host of report.html's heat map: its rows' hosts and the clean hosts collapsed into a count."""
    assert page.count('<table id="grid">') == 1
    grid = page[page.index("<tbody>"):page.index("</tbody>")]
    hosts = set(r.split('data-host="')[1].split('"')[0] for r in grid.split("<tr ")[1:])
    if 'id="clean-hosts"' in page:
        clean = page[page.index('id="clean-hosts"'):]
        hosts |= set(clean[clean.index("<p>") + 3:clean.index("</p>")].split(", "))
    return sorted(hosts)


def test_three_slices_merged_are_the_unsliced_run(fleet, tmp_path) -> None:
    """Issue 13: diagnose.yml with --limit in 3 slices of one run group, merge_reports.yml, and one unsliced run: the
    same targets and findings; the merged report.html is one heat map of the whole fleet."""
    hosts = sorted(fleet["hosts"])
    limits = [":".join(hosts[:2]), hosts[2], ":".join(hosts[3:])]
    for n, limit in enumerate(limits):
        rc, out = playbook("diagnose.yml", fleet["inventory"], tmp_path, "--limit", limit, packetloss_interval=3,
                           packetloss_report_dir=str(tmp_path / "slices" / str(n)), packetloss_run_group="fleet-test",
                           packetloss_run_slice="%d/3" % (n + 1))
        assert rc == 0, out[-4000:]
        with open(tmp_path / "slices" / str(n) / "summary.json") as f:
            run = json.load(f)["run"]
        assert (run["group"], run["slice"], run["limit"], run["kind"]) == ("fleet-test", "%d/3" % (n + 1), limit, "run")
    rc, out = playbook("diagnose.yml", fleet["inventory"], tmp_path, packetloss_interval=3,
                       packetloss_report_dir=str(tmp_path / "whole"))
    assert rc == 0, out[-4000:]
    # the fleet has warnings: with packetloss_merge_fail_severity the merge fails after writing every report
    rc, out = playbook("merge_reports.yml", fleet["inventory"], tmp_path, packetloss_report_dir=str(tmp_path / "fleet"),
                       packetloss_merge_from=[str(tmp_path / "slices" / "*")], packetloss_merge_fail_severity="warning")
    assert rc == 2 and "finding(s) of at least warning in the fleet" in out, out[-4000:]
    merged, merged_targets = report_set(tmp_path / "fleet")
    whole, whole_targets = report_set(tmp_path / "whole")
    assert sorted(merged_targets) == sorted(whole_targets) == [(h, "host") for h in hosts]
    assert findings_of(merged_targets) == findings_of(whole_targets), (findings_of(merged_targets), findings_of(whole_targets))
    assert merged["hosts"] == whole["hosts"] == len(hosts) and merged["missing"] == whole["missing"] == []
    assert [r["slice"] for r in merged["runs"]] == ["1/3", "2/3", "3/3"] and merged["run"]["kind"] == "merge"
    assert merged["merge"]["superseded"] == [] and [s["hosts"] for s in merged["merge"]["sources"]] == [2, 1, 1]
    pages = [(tmp_path / d / "report.html").read_text() for d in ("fleet", "whole")]
    assert heat_map_hosts(pages[0]) == heat_map_hosts(pages[1]) == hosts
    for name in ("report.md", "junit.xml", "summary.txt", "packetloss.prom"):
        assert (tmp_path / "fleet" / name).stat().st_size > 0, name
    assert 'packetloss_target_worst_severity{host="%s",target="host"}' % hosts[0] in (tmp_path / "fleet" / "packetloss.prom").read_text()
