"""netem, random_drop, inject.yml and remediate.yml in the VM lab (Debian's stock kernel, real sch_netem,
python3-pyroute2 0.7 in the VM as the netlink reader's oracle), through its inventory: host vmlab, container nginx inside it.

Skipped unless NETDIAG_VM_INVENTORY names the VM lab's inventory file (lab/vm/vm-lab start writes it), e.g.
    lab/vm/vm-lab start
    NETDIAG_VM_INVENTORY=lab/.state/vm/inventory.ini .venv/bin/python -m pytest -q tests/integration/test_remediate_vm.py
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any, Dict, Tuple

import pytest

from conftest import ROOT, ok, play_task, said

INVENTORY = os.environ.get("NETDIAG_VM_INVENTORY")
pytestmark = pytest.mark.skipif(not INVENTORY, reason="NETDIAG_VM_INVENTORY is not set (the VM lab is not running)")
HOST = "vmlab"
CONTAINER = "nginx"


def env() -> Dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_HOST_KEY_CHECKING="False")


def task(module: str, check: bool = False, **args: Any) -> Dict[str, Any]:
    """One task on vmlab (module is a full name), registered result back, diff included."""
    return play_task(INVENTORY or "", HOST, module, check, **args)


def vm(*argv: str) -> str:
    # Ansible templates module arguments: keep docker's Go templates ({{.State.Pid}}) as they are
    r = ok(task("ansible.builtin.command", argv=["{% raw %}" + a + "{% endraw %}" for a in argv]))
    return r["stdout"] + "\n" + r["stderr"]


def in_container(*argv: str) -> str:
    return vm("docker", "exec", CONTAINER, *argv)


def container_ip() -> str:
    return vm("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", CONTAINER).strip()


def hping_loss(count: int = 50) -> int:
    """The seed's measurement, from the VM (the container's host); hping3's exit status is not looked at."""
    r = task("ansible.builtin.command", argv=["hping3", "-c", str(count), "-S", "-p", "80", "-i", "u100000", container_ip()])
    text = r.get("stdout", "") + "\n" + r.get("stderr", "")
    m = re.search(r"(\d+)% packet loss", text)
    assert m, text
    return int(m.group(1))


def playbook(name: str, *extra: str) -> Tuple[Dict[str, int], str]:
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY, os.path.join(ROOT, "playbooks", name),
                           "-e", "packetloss_hosts=%s" % HOST] + list(extra),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(), cwd=ROOT, check=False)
    m = re.search(r"%s\s+:\s+(.*)" % HOST, proc.stdout)
    assert m, proc.stdout[-3000:]
    return dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))), proc.stdout


def faults() -> Dict[str, Any]:
    facts = ok(task("netdiag.packetloss.packetloss_facts", container=CONTAINER, gather_subset=["tc", "iptables"]))
    p = facts["ansible_facts"]["packetloss"]
    netem = [q for q in p["tc"]["qdiscs"] if q["kind"] == "netem"]
    return {"netem": [(q["interface"], q["options"]["loss"]) for q in netem],
            "drops": sorted((r["chain"], round(r["statistic"]["probability"], 6)) for r in p["iptables"]["random_drop_rules"])}


@pytest.fixture
def clean() -> Any:
    for module in ("netdiag.packetloss.netem", "netdiag.packetloss.random_drop"):
        ok(task(module, state="absent", container=CONTAINER))
    yield
    for module in ("netdiag.packetloss.netem", "netdiag.packetloss.random_drop"):
        task(module, state="absent", container=CONTAINER)


def test_netem_module_on_a_real_netem_kernel(clean: Any) -> None:
    seed = dict(state="present", container=CONTAINER, interface="eth0", loss=30)
    dry = ok(task("netdiag.packetloss.netem", check=True, **seed))
    assert dry["changed"] and "netem" not in in_container("tc", "qdisc", "show", "dev", "eth0")
    assert "loss 30%" in dry["diff"][0]["after"]
    r = ok(task("netdiag.packetloss.netem", **seed))
    assert r["changed"] and r["added"][0]["options"]["loss"] == 30.0
    assert re.search(r"qdisc netem \S+ root .*loss 30%", in_container("tc", "qdisc", "show", "dev", "eth0"))
    assert ok(task("netdiag.packetloss.netem", **seed))["changed"] is False  # idempotent against the kernel's view

    every = dict(state="present", container=CONTAINER, interface="eth0", loss=30, loss_correlation=25, delay="100ms",
                 jitter="10ms", delay_correlation=20, duplicate=1, corrupt=0.1, reorder=5, gap=3, rate="10mbit",
                 limit=500)
    r = ok(task("netdiag.packetloss.netem", **every))
    assert r["changed"], r
    shown = in_container("tc", "qdisc", "show", "dev", "eth0")
    for words in ("limit 500", "delay 100ms", "loss 30%", "duplicate 1%", "reorder 5%", "corrupt 0.1%", "rate 10Mbit",
                  "gap 3"):
        assert words in shown, (words, shown)
    assert ok(task("netdiag.packetloss.netem", **every))["changed"] is False

    # absent with bounds that do not match: nothing; then everything, with a backup that restores it
    r = ok(task("netdiag.packetloss.netem", state="absent", container=CONTAINER, match={"loss": {"min": 50}}))
    assert r["changed"] is False
    r = ok(task("netdiag.packetloss.netem", state="absent", container=CONTAINER, backup=True))
    assert r["changed"] and "netem" not in in_container("tc", "qdisc", "show", "dev", "eth0")
    assert vm("stat", "-c", "%a", r["backup_file"]).strip() == "600"
    vm("sh", "-c", r["backup_files"][0]["restore"])
    assert "loss 30%" in in_container("tc", "qdisc", "show", "dev", "eth0")


def test_seed_inject_remediate_verify(clean: Any) -> None:
    recap, out = playbook("inject.yml")
    assert recap["failed"] == 0 and recap["changed"] >= 2, out[-3000:]
    assert faults() == {"netem": [("eth0", 30.0)], "drops": [("INPUT", 0.3), ("OUTPUT", 0.3)]}
    assert playbook("inject.yml")[0]["changed"] == 0
    assert hping_loss() > 0

    recap, out = playbook("remediate.yml", "--check", "--diff", "-e", '{"packetloss_containers": ["%s"]}' % CONTAINER)
    assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]  # one task per host does every target
    assert "-qdisc netem" in out and "--A INPUT -m statistic" in out
    assert faults() == {"netem": [("eth0", 30.0)], "drops": [("INPUT", 0.3), ("OUTPUT", 0.3)]}

    probe = json.dumps({"packetloss_containers": [CONTAINER], "packetloss_probe_from": "host",
                        "packetloss_probe_targets": [{"host": container_ip(), "port": 80, "count": 20}]})
    recap, out = playbook("remediate.yml", "-e", probe)
    assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
    assert said(out, "every cause removed is gone") and said(out, "every probe within")
    assert faults() == {"netem": [], "drops": []}
    assert hping_loss() == 0
    recap, out = playbook("remediate.yml", "-e", probe)
    assert recap["failed"] == 0 and recap["changed"] == 0, out[-3000:]


CHAOS = "chaos"


@pytest.fixture
def chaos(clean: Any) -> Any:
    """An intended netem (a chaos drill) on lo of the VM's namespace chaos."""
    vm("ip", "netns", "add", CHAOS)
    try:
        vm("ip", "-n", CHAOS, "link", "set", "lo", "up")
        vm("tc", "-n", CHAOS, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "5ms", "loss", "2%")
        yield CHAOS
    finally:
        vm("ip", "netns", "del", CHAOS)


def test_allow_list_keeps_the_intended_netem_and_removes_the_rest(chaos: str) -> None:
    recap, out = playbook("inject.yml")
    assert recap["failed"] == 0, out[-3000:]
    assert faults() == {"netem": [("eth0", 30.0)], "drops": [("INPUT", 0.3), ("OUTPUT", 0.3)]}
    allowed = json.dumps({"packetloss_containers": [CONTAINER], "packetloss_netns": [chaos],
                          "packetloss_remediate_allow": [{"expression": "[?id=='qdisc.netem' && target=='netns:%s']" % chaos,
                                                          "reason": "chaos drill"}]})
    recap, out = playbook("remediate.yml", "--check", "--diff", "-e", allowed)
    assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
    assert "-qdisc netem" in out and said(out, "kept 1 as intended")
    assert faults()["netem"] == [("eth0", 30.0)]

    recap, out = playbook("remediate.yml", "-e", allowed)
    assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
    assert said(out, "verified: every cause removed is gone") and said(out, "kept 1 as intended")
    assert faults() == {"netem": [], "drops": []}
    kept = vm("tc", "-n", chaos, "qdisc", "show", "dev", "lo")
    assert re.search(r"qdisc netem \S+ root .*delay 5ms loss 2%", kept), kept
    recap, out = playbook("remediate.yml", "-e", allowed)
    assert recap["failed"] == 0 and recap["changed"] == 0, out[-3000:]

    # without the allow-list the drill goes too
    recap, out = playbook("remediate.yml", "-e", json.dumps({"packetloss_containers": "none", "packetloss_netns": [chaos]}))
    assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
    assert "netem" not in vm("tc", "-n", chaos, "qdisc", "show", "dev", "lo")


def test_netlink_reader_matches_pyroute2_with_netem(clean: Any) -> None:
    """In the container's namespace, with a netem that has dropped: the VM's python3-pyroute2 0.7 reads the same."""
    ok(task("netdiag.packetloss.netem", state="present", container=CONTAINER, interface="eth0", loss=30, limit=900))
    hping_loss(20)
    here = os.path.dirname(os.path.abspath(__file__))
    ok(task("ansible.builtin.copy", src=os.path.join(ROOT, "plugins", "module_utils") + "/",
            dest="/tmp/netdiag-oracle/ansible_collections/netdiag/packetloss/plugins/module_utils/", mode="0644"))
    ok(task("ansible.builtin.copy", src=os.path.join(here, "netlink_oracle.py"), dest="/tmp/netdiag-oracle/", mode="0644"))
    pid = vm("docker", "inspect", "-f", "{{.State.Pid}}", CONTAINER).strip()
    out = json.loads(vm("nsenter", "-t", pid, "-n", "python3", "/tmp/netdiag-oracle/netlink_oracle.py",
                        "/tmp/netdiag-oracle").strip())
    assert out["pyroute2"].startswith("0.7") and out["diffs"] == [], out
    netem = [q for q in out["qdiscs"] if q[0] == "eth0" and q[1] == "netem"]
    assert netem and netem[0][3] == "root" and netem[0][4] > 0, out  # its drops were compared, and its loss and limit


def test_prerequisites_on_a_docker_host_with_the_sdk_cost_nothing(clean: Any) -> None:
    """The VM runs Docker and has python3-docker: nothing to install, in check mode too, and the container is read."""
    for check in (True, False):
        r = ok(task("netdiag.packetloss.diagnose", check=check, interval=0, containers=[CONTAINER],
                    install_prerequisites=True))
        assert r["prerequisites"] == {"changed": False, "packages": [], "docker_sdk": "present"}, r
        assert r["changed"] is False
        assert "container:" + CONTAINER in r["ansible_facts"]["packetloss_diagnosis"]["targets"], r
