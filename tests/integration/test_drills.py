"""The drill matrix on this machine's 6.18 kernel: every namespace drill of roles/inject/vars/drills.yml is injected
in namespaces we create, playbooks/diagnose.yml runs (real ansible-playbook) with the drill's traffic during its
interval, and the findings must be exactly the drill's: its expected ids at warning or above on its target, and
nothing else at warning or above on any target of the run (the drill's `may` ids aside). Then the fault is removed
and the same run (with the traffic, where it is a healthy workload) must find nothing at warning or above.

The drop-reason tracepoint is host-wide: this needs the machine to itself (scripts/test runs it under the heavy lock).
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

import drills
from drills import HELPER, LOCAL, Traffic, above_info, assert_drill_findings, describe, findings_of, load, run_step
from test_diagnose import diagnose
from test_inject import playbook

NETNS_DRILLS = [d for d in load() if d["where"] == "netns"]
INTERVAL = 2


@pytest.fixture
def topology(tmp_path: Any) -> Iterator[Tuple[Dict[str, Optional[str]], Dict[str, Any]]]:
    """Namespaces a - b - c joined by veth pairs, b routing between them (drills.topology)."""
    yield from drills.topology(LOCAL, {"py": "%s %s" % (sys.executable, HELPER), "dir": str(tmp_path), "life": "300"})


def _label(drill: Dict[str, Any], names: Dict[str, Optional[str]]) -> str:
    return "host" if drill["target"] == "host" else "netns:%s" % names[drill["target"]]


def _diagnose(tmp_path: Any, names: Dict[str, Optional[str]], run: str) -> Any:
    out = tmp_path / run
    out.mkdir()
    diagnose(out, packetloss_containers="none", packetloss_netns=[names[x] for x in "abc"],
             packetloss_interval=INTERVAL)
    return list(findings_of(str(out / "reports")))


@pytest.mark.parametrize("drill", NETNS_DRILLS, ids=[d["id"] for d in NETNS_DRILLS])
def test_drill(drill: Dict[str, Any], topology: Tuple[Dict[str, Optional[str]], Dict[str, Any]], tmp_path: Any) -> None:
    names, values = topology
    started = time.monotonic()
    for step in drill.get("setup") or []:
        run_step(step, names, values)
    for step in drill.get("inject") or []:
        run_step(step, names, values)
    if drill.get("check"):
        assert run_step(drill["check"], names, values, check=False) == 0, "the check does not see the injected fault"
    try:
        with Traffic(drill, names, values):
            findings = _diagnose(tmp_path, names, "faulty")
    finally:
        for step in drill.get("remove") or []:
            run_step(step, names, values)
    assert_drill_findings(drill, _label(drill, names), findings)

    if drill.get("check"):
        assert run_step(drill["check"], names, values, check=False) != 0, "the check still sees the fault after remove"
    if drill.get("clean_traffic"):
        with Traffic(drill, names, values):
            clean = _diagnose(tmp_path, names, "clean")
    else:
        clean = _diagnose(tmp_path, names, "clean")
    assert above_info(iter(clean)) == [], describe(above_info(iter(clean)))
    print("drill %s: %.1f s" % (drill["id"], time.monotonic() - started))


# ---------------------------------------------------------------- the inject role's drills ---------------------------

ROLE_DRILLS = [d for d in load() if d.get("role") == "drill" and not d.get("hosts_only")]


def _role_values(netns: str, drill_dir: str) -> Dict[str, Any]:
    """The placeholders as the role fills them (roles/inject/vars/main.yml) for target netns:NAME."""
    return {"py": "python3 %s/netdiag_drill.py" % drill_dir, "dir": "%s/netns_%s" % (drill_dir, netns), "life": "3600",
            "iface": "lo"}


def _present(netns: str, drill_dir: str) -> Dict[str, bool]:
    names: Dict[str, Optional[str]] = {"b": netns, "host": None}
    return dict((d["id"], run_step(d["check"], names, _role_values(netns, drill_dir), check=False) == 0) for d in ROLE_DRILLS)


def test_the_inject_role_makes_and_takes_away_its_drills(netns: str, tmp_path: Any) -> None:
    """playbooks/inject.yml with every drill the role offers in a namespace: check mode changes nothing, present makes
    them (and again changes nothing), absent takes them away (and again changes nothing); the seed's faults off."""
    drill_dir = str(tmp_path / "drills")
    extra = ["-e", json.dumps({"packetloss_inject_drills": [d["id"] for d in ROLE_DRILLS], "packetloss_inject_netem": False,
                               "packetloss_inject_random_drop": False, "packetloss_inject_containers": [],
                               "packetloss_inject_netns": [netns], "packetloss_inject_interface": "lo",
                               "packetloss_inject_drill_dir": drill_dir})]
    none = dict((d["id"], False) for d in ROLE_DRILLS)
    every = dict((d["id"], True) for d in ROLE_DRILLS)
    try:
        recap, out = playbook("inject.yml", "--check", *extra)
        assert recap["failed"] == 0 and recap["changed"] >= 1 and "would be made" in out, out[-3000:]
        assert _present(netns, drill_dir) == none
        recap, out = playbook("inject.yml", *extra)
        assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
        assert _present(netns, drill_dir) == every
        recap, out = playbook("inject.yml", *extra)
        assert recap["failed"] == 0 and recap["changed"] == 0, out[-3000:]
        recap, out = playbook("inject.yml", "-e", "packetloss_inject_state=absent", *extra)
        assert recap["failed"] == 0 and recap["changed"] >= 1, out[-3000:]
        assert _present(netns, drill_dir) == none
        recap, out = playbook("inject.yml", "-e", "packetloss_inject_state=absent", *extra)
        assert recap["failed"] == 0 and recap["changed"] == 0, out[-3000:]
    finally:
        playbook("inject.yml", "-e", "packetloss_inject_state=absent", *extra)


@pytest.mark.parametrize("bad,needle", [
    ({"packetloss_inject_drills": ["nosuch"]}, "packetloss_inject_drills"),
    ({"packetloss_inject_drills": ["udp_rcvbuf"], "packetloss_inject_drill_traffic": -1}, "traffic at least 0"),
    ({"packetloss_inject_drill_lifetime": "soon"}, "packetloss_inject_drill_lifetime"),
    ({"packetloss_inject_drills": ["conntrack_full"]}, "change host-wide settings"),
    ({"packetloss_inject_drills": ["udp_rcvbuf"], "packetloss_inject_drill_lifetime": 0}, "lifetime at least 1"),
    ({"packetloss_inject_drills": ["udp_rcvbuf"], "packetloss_inject_drill_dir": "relative/dir"}, "must be absolute"),
])
def test_the_inject_role_rejects_bad_drill_input_and_changes_nothing(netns: str, tmp_path: Any, bad: Dict[str, Any],
                                                                     needle: str) -> None:
    drill_dir = str(tmp_path / "drills")
    args = {"packetloss_inject_netem": False, "packetloss_inject_random_drop": False, "packetloss_inject_containers": [],
            "packetloss_inject_netns": [netns], "packetloss_inject_drill_dir": drill_dir}
    args.update(bad)
    recap, out = playbook("inject.yml", "-e", json.dumps(args))
    assert recap["failed"] == 1 and recap["changed"] == 0, out[-3000:]
    assert needle in out, out[-3000:]
    assert not os.path.exists(drill_dir) and _present(netns, drill_dir) == dict((d["id"], False) for d in ROLE_DRILLS)
