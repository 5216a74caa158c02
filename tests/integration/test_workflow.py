"""Workflows (issue 13): diagnose.yml and compliance.yml run by ansible-runner - as AWX runs a job - publish their
compact result with set_stats, read here from the runner's artifacts (the playbook_on_stats event, where AWX reads a
job's artifacts from); merge_reports.yml refuses overlapping slices and writes nothing. On this machine: a namespace
of the test's own with a random-drop rule, the playbooks on localhost. A few seconds each."""
from __future__ import annotations

import glob
import json
import os
import subprocess
from typing import Any, Dict, Tuple

import ansible_runner

from conftest import COLLECTIONS, ROOT, sh

INVENTORY = os.path.join(ROOT, "playbooks", "inventory", "localhost.yml")
ENV = {"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS, "ANSIBLE_NOCOLOR": "1"}


def run_playbook(tmp_path, name: str, ident: str, **extravars: Any) -> Tuple[Any, Dict[str, Any]]:
    """ansible-runner runs playbooks/NAME; (the runner, the set_stats data of its artifacts' playbook_on_stats event)."""
    extravars.setdefault("packetloss_report_dir", str(tmp_path / ident))
    private = tmp_path / "runner"
    private.mkdir(exist_ok=True)
    r = ansible_runner.run(private_data_dir=str(private), playbook=os.path.join(ROOT, "playbooks", name),
                           inventory=INVENTORY, extravars=extravars, ident=ident, envvars=ENV, quiet=True)
    events = []
    for path in glob.glob(str(private / "artifacts" / ident / "job_events" / "*.json")):
        with open(path) as f:
            events.append(json.load(f))
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    assert len(stats) == 1, (r.status, r.stdout.read()[-3000:])
    return r, stats[0]["event_data"]["artifact_data"]


def random_drop(netns: str) -> None:
    sh("iptables-nft", "-w", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.30", "-j", "DROP",
       ns=netns)


COMMON = {"packetloss_containers": "none", "packetloss_interval": 0, "packetloss_drop_reasons": False,
          # what AWX gives every job it runs
          "awx_job_id": 4242, "awx_workflow_job_id": 77}


def test_diagnose_publishes_its_result_in_the_runner_artifacts(netns, tmp_path) -> None:
    random_drop(netns)
    r, data = run_playbook(tmp_path, "diagnose.yml", "diagnose", packetloss_netns=[netns], **COMMON)
    assert r.status == "successful" and r.rc == 0
    result = data["packetloss_result"]
    assert result["schema"] == "netdiag.packetloss/result/v1"
    assert result["run"] == {"id": "awx-job-4242", "group": "awx-workflow-job-77", "slice": None, "limit": None}
    assert result["report"] == str(tmp_path / "diagnose" / "report.html") and os.path.isfile(result["report"])
    assert result["hosts"] == 1 and result["targets"] == 2 and result["severity"] == "warning"
    ours = [f for f in result["findings"] if f["target"] == "netns:" + netns]
    assert [(f["id"], f["severity"], f["remediation"]) for f in ours] == [("netfilter.random_drop", "critical", "random_drop")]
    assert ours[0]["remediation_args"]["netns"] == "/run/netns/" + netns and ours[0]["host"] == "localhost"
    assert result["finding_ids"]["netfilter.random_drop"] >= 1 and result["counts"]["critical"] >= 1
    assert {"host": "localhost", "target": "netns:" + netns, "worst": "critical", "ids": ["netfilter.random_drop"]} \
        in result["targets_above"]
    assert "compliant" not in result
    # the same run in the report set
    with open(tmp_path / "diagnose" / "summary.json") as f:
        assert json.load(f)["run"]["id"] == "awx-job-4242"


def test_compliance_publishes_its_verdict_before_it_fails(netns, tmp_path) -> None:
    random_drop(netns)
    r, data = run_playbook(tmp_path, "compliance.yml", "compliance", packetloss_netns=[netns], **COMMON)
    assert r.status == "failed" and r.rc == 2
    result = data["packetloss_result"]
    assert result["compliant"] is False and result["failed_hosts"] == ["localhost"] and result["failed_hosts_total"] == 1
    assert result["compliance_report"] == str(tmp_path / "compliance" / "compliance.json")
    assert any(f["target"] == "netns:" + netns and f["id"] == "netfilter.random_drop" for f in result["findings"])


def test_merge_reports_refuses_overlapping_slices_and_writes_nothing(tmp_path) -> None:
    env = dict(os.environ, **ENV)
    for n in (1, 2):  # localhost in both slices of one run group
        subprocess.run(["ansible-playbook", "playbooks/diagnose.yml", "-e", json.dumps(dict(
            COMMON, packetloss_report_dir=str(tmp_path / ("s%d" % n)), packetloss_run_slice="%d/2" % n,
            awx_job_id=100 + n))], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    proc = subprocess.run(["ansible-playbook", "playbooks/merge_reports.yml", "-e", json.dumps({
        "packetloss_merge_from": [str(tmp_path / "s*")], "packetloss_report_dir": str(tmp_path / "fleet")})],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert ("slices overlap: host localhost is in run awx-job-101 slice 1/2 (%s) and in run awx-job-102 slice 2/2 (%s), "
            "slices of one run (group awx-workflow-job-77)" % (tmp_path / "s1", tmp_path / "s2")) in " ".join(proc.stdout.split())
    assert not (tmp_path / "fleet").exists()
