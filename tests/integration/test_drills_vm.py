"""The VM-only drills of roles/inject/vars/drills.yml on the VM lab (Debian's stock 6.1 kernel: real sch_netem, a
writable nf_conntrack_max, hist triggers for the drop reasons), made and taken away by playbooks/inject.yml (the
inject role, as a user runs a game day), diagnosed by playbooks/diagnose.yml: the drill's findings at warning or above
on its target and nothing else at warning or above on any target; after absent, nothing at warning or above.

Skipped unless NETDIAG_VM_INVENTORY names the VM lab's inventory (the `vm` stage of scripts/test).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from drills import above_info, by_id, describe, findings_of
from test_diagnose import VM_INVENTORY, diagnose, vm_vars
import test_remediate_vm
from test_remediate_vm import CONTAINER, HOST, playbook

clean = test_remediate_vm.clean  # the VM tests' fixture: no netem, no random-drop rules in the container

pytestmark = pytest.mark.skipif(not VM_INVENTORY, reason="NETDIAG_VM_INVENTORY (the VM lab's inventory) is not set")


def _diagnose(tmp_path: Any, run: str, containers: Any, probes: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = tmp_path / run
    out.mkdir()
    diagnose(out, inventory=VM_INVENTORY, packetloss_hosts=HOST, packetloss_become=True, packetloss_containers=containers,
             packetloss_interval=5, packetloss_probe_from="host", packetloss_probe_targets=probes)
    return list(findings_of(str(out / "reports")))


def _assert_only(drill: Dict[str, Any], target: str, findings: List[Dict[str, Any]]) -> None:
    loud = above_info(iter(findings))
    missing = [fid for fid in drill["expect"] if not [f for f in loud if f["id"] == fid and f["target"] == target]]
    assert not missing, ("missing on %s: %s" % (target, missing), describe(loud))
    others = [f for f in loud if not ((f["id"] in drill["expect"] and f["target"] == target) or f["id"] in (drill.get("may") or []))]
    assert not others, ("findings beyond the drill's", describe(others))


def test_vm_drill_netem(tmp_path: Any, clean: Any) -> None:
    drill = by_id("netem")
    # the drill's traffic: SYN probes of the container's nginx from the VM during the interval
    probes = [{"host": vm_vars()["netdiag_lab_container_ip"], "port": 80, "mode": "syn", "count": 60, "interval": 0.05,
               "target": "container:" + CONTAINER}]
    extra = json.dumps({"packetloss_inject_containers": [CONTAINER], "packetloss_inject_random_drop": False,
                        "packetloss_inject_netem_options": {"loss": 30}})
    recap, out = playbook("inject.yml", "-e", extra)
    assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
    try:
        _assert_only(drill, "container:" + CONTAINER, _diagnose(tmp_path, "faulty", [CONTAINER], probes))
    finally:
        recap, out = playbook("inject.yml", "-e", extra, "-e", "packetloss_inject_state=absent")
    assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
    assert above_info(iter(_diagnose(tmp_path, "clean", [CONTAINER], probes))) == []


def test_vm_drill_conntrack_full(tmp_path: Any) -> None:
    """The role's conntrack_full drill on the VM host with its own traffic (new UDP flows to loopback)."""
    drill = by_id("conntrack_full")
    extra = json.dumps({"packetloss_inject_drills": ["conntrack_full"], "packetloss_inject_host": True,
                        "packetloss_inject_containers": [], "packetloss_inject_netem": False,
                        "packetloss_inject_random_drop": False, "packetloss_inject_drill_traffic": 60})
    absent = ["-e", extra, "-e", "packetloss_inject_state=absent"]
    recap, out = playbook("inject.yml", "-e", extra)
    assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
    try:
        assert playbook("inject.yml", "-e", json.dumps(dict(json.loads(extra), packetloss_inject_drill_traffic=0)))[0]["changed"] == 0
        _assert_only(drill, "host", _diagnose(tmp_path, "faulty", "none", []))
    finally:
        recap, out = playbook("inject.yml", *absent)
    assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
    assert playbook("inject.yml", *absent)[0]["changed"] == 0
    assert above_info(iter(_diagnose(tmp_path, "clean", "none", []))) == []
