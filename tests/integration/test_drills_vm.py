"""The VM-only drills of roles/inject/vars/drills.yml on the VM lab (Debian's stock 6.1 kernel: real sch_netem, tc
classifiers and actions, host-wide sysctls in its initial namespace, hist triggers for the drop reasons), diagnosed by
playbooks/diagnose.yml: the drill's findings at warning or above on its target and nothing else at warning or above
on any target; after the fault is removed, nothing at warning or above.

The role's drills (netem, conntrack_full) are made and taken away by playbooks/inject.yml (the inject role, as a user
runs a game day). The others (where: vm with no role) run their table commands in the VM over SSH, in the a - b - c
namespaces of test_drills.py made inside the VM (host: the VM's initial namespace, where the host-wide sysctls are),
with their own traffic; every host-wide setting they touch must read as before afterwards.

Skipped unless NETDIAG_VM_INVENTORY names the VM lab's inventory (the `vm` stage of scripts/test).
"""
from __future__ import annotations

import json
import shlex
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import drills
from drills import HELPER, Remote, RemoteTraffic, above_info, assert_drill_findings, by_id, findings_of, load, run_step
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
        assert_drill_findings(drill, "container:" + CONTAINER, _diagnose(tmp_path, "faulty", [CONTAINER], probes))
    finally:
        recap, out = playbook("inject.yml", "-e", extra, "-e", "packetloss_inject_state=absent")
    assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
    assert above_info(iter(_diagnose(tmp_path, "clean", [CONTAINER], probes))) == []


def test_vm_drill_conntrack_full(tmp_path: Any) -> None:
    """The role's conntrack_full drill on the VM host with its own traffic (new UDP flows to loopback). The traffic
    lasts longer than the test (absent ends it): a diagnose interval at its end showed the sender's last datagrams
    after its sink had gone (socket.no_listener), a false finding."""
    drill = by_id("conntrack_full")
    extra = json.dumps({"packetloss_inject_drills": ["conntrack_full"], "packetloss_inject_host": True,
                        "packetloss_inject_containers": [], "packetloss_inject_netem": False,
                        "packetloss_inject_random_drop": False, "packetloss_inject_drill_traffic": 600})
    absent = ["-e", extra, "-e", "packetloss_inject_state=absent"]
    recap, out = playbook("inject.yml", "-e", extra)
    assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
    try:
        assert playbook("inject.yml", "-e", json.dumps(dict(json.loads(extra), packetloss_inject_drill_traffic=0)))[0]["changed"] == 0
        assert_drill_findings(drill, "host", _diagnose(tmp_path, "faulty", "none", []))
    finally:
        recap, out = playbook("inject.yml", *absent)
    assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
    assert playbook("inject.yml", *absent)[0]["changed"] == 0
    assert above_info(iter(_diagnose(tmp_path, "clean", "none", []))) == []


# ---------------------------------------------------------------- the table's VM drills, in namespaces in the VM ------

TABLE_VM_DRILLS = [d for d in load() if d["where"] == "vm" and not d.get("role") and d.get("vm_test")]
# the host-wide settings a drill may touch: each must read the same after the drill as before it
HOST_SETTINGS = ("sysctl net.core.netdev_budget net.core.netdev_budget_usecs net.core.netdev_max_backlog "
                 "net.core.flow_limit_cpu_bitmap net.core.flow_limit_table_len net.core.dev_weight "
                 "net.ipv4.neigh.default.gc_thresh1 net.ipv4.neigh.default.gc_thresh2 net.ipv4.neigh.default.gc_thresh3; "
                 "ip -4 neigh show nud permanent; tc qdisc show")


@pytest.fixture
def vm_topology() -> Iterator[Tuple[Remote, Dict[str, Optional[str]], Dict[str, Any]]]:
    """The a - b - c namespaces inside the VM, the drill helper copied there; all of it taken away after."""
    runner = Remote(VM_INVENTORY or "")
    base = "/run/netdiag-vmdrill-%s" % uuid.uuid4().hex[:8]
    with open(HELPER) as f:
        runner.script("mkdir -p %s && cat > %s/netdiag_drill.py" % (base, base), stdin=f.read())
    try:
        for names, values in drills.topology(runner, {"py": "python3 %s/netdiag_drill.py" % base, "dir": base,
                                                      "life": "300"}):
            yield runner, names, values
    finally:
        runner.script("rm -rf %s" % shlex.quote(base), check=False)


def _diagnose_netns(tmp_path: Any, names: Dict[str, Optional[str]], run: str) -> List[Dict[str, Any]]:
    out = tmp_path / run
    out.mkdir()
    diagnose(out, inventory=VM_INVENTORY, packetloss_hosts=HOST, packetloss_become=True, packetloss_containers="none",
             packetloss_netns=[names[x] for x in "abc"], packetloss_interval=5)
    return list(findings_of(str(out / "reports")))


@pytest.mark.parametrize("drill", TABLE_VM_DRILLS, ids=[d["id"] for d in TABLE_VM_DRILLS])
def test_vm_drill(drill: Dict[str, Any], vm_topology: Tuple[Remote, Dict[str, Optional[str]], Dict[str, Any]],
                  tmp_path: Any) -> None:
    runner, names, values = vm_topology
    started = time.monotonic()
    settings = runner.script(HOST_SETTINGS)[1]
    for step in (drill.get("setup") or []) + (drill.get("inject") or []):
        run_step(step, names, values, runner=runner)
    try:
        assert run_step(drill["check"], names, values, check=False, runner=runner) == 0, "the check does not see the fault"
        with RemoteTraffic(drill, names, values, runner):
            findings = _diagnose_netns(tmp_path, names, "faulty")
    finally:
        for step in drill.get("remove") or []:
            run_step(step, names, values, runner=runner)
    target = "host" if drill["target"] == "host" else "netns:%s" % names[drill["target"]]
    assert_drill_findings(drill, target, findings)
    for fid, name in (drill.get("evidence") or {}).items():  # the counter that tells this cause from its neighbours
        moved = [c for f in findings if f["id"] == fid and f["target"] == target
                 for c in f["evidence"].get("counters", []) + [f["evidence"].get(name) or {}] if c.get("name") == name]
        assert moved and all(c["delta"] > 0 for c in moved), (fid, name, [f["evidence"] for f in findings if f["id"] == fid])

    assert run_step(drill["check"], names, values, check=False, runner=runner) != 0, "the check still sees the fault"
    assert runner.script(HOST_SETTINGS)[1] == settings, "a host-wide setting differs after the drill"
    if drill.get("clean_traffic"):
        with RemoteTraffic(drill, names, values, runner):
            clean = _diagnose_netns(tmp_path, names, "clean")
    else:
        clean = _diagnose_netns(tmp_path, names, "clean")
    assert above_info(iter(clean)) == [], drills.describe(above_info(iter(clean)))
    print("VM drill %s: %.1f s" % (drill["id"], time.monotonic() - started))
