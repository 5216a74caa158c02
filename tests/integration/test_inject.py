"""The host lab end to end: the seed's iptables faults in the nginx container, removed by random_drop and by
playbooks/remediate.yml (hping3 then loses nothing), and put back by playbooks/inject.yml.

This kernel has no sch_netem, so the netem half runs in the VM lab only (test_remediate_vm.py)."""
from __future__ import annotations

import os
import re
import subprocess
from typing import Dict, List, Tuple

from conftest import HOST_LAB, ROOT, facts_of, hping, run_module, said, sh
from test_remediate import ok, run_task

INVENTORY = os.path.join(ROOT, "playbooks", "inventory", "localhost.yml")


def loss_percent(ip: str, count: int = 20) -> int:
    """The share of SYNs no SYN-ACK answered, over distinct probes: hping3's own figure counts the SYN-ACKs the
    container retransmits (its DUP! lines) as answers, and with the faults on it read 0% once (as host-lab measure
    says)."""
    lines = hping(ip, count=count)
    assert any("packet loss" in l for l in lines), lines
    answered = set(re.findall(r"seq=(\d+)", "\n".join(l for l in lines if "flags=" in l and not l.startswith("DUP"))))
    return round(100 * (count - len(answered)) / count)


def no_loss(ip: str) -> bool:
    """0% loss in one of two 20-SYN runs. hping3 waits about a second after its last SYN: on a loaded machine one
    late SYN-ACK reads as a loss (seen once in CI-like runs). The faults lose about half the SYNs of a run, so two
    runs without a loss cannot come from them (0.5 ** 40): the second run only forgives a late reply."""
    return loss_percent(ip) == 0 or loss_percent(ip) == 0


def playbook(name: str, *extra: str) -> Tuple[Dict[str, int], str]:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY, os.path.join(ROOT, "playbooks", name)] + list(extra),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT, check=False)
    m = re.search(r"localhost\s+:\s+(.*)", proc.stdout)
    assert m, proc.stdout[-3000:]
    recap = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1)))
    return recap, proc.stdout


def container_drops() -> List[Tuple[str, float]]:
    facts = facts_of(run_module("iptables_facts", container="nginx"))
    return sorted((r["chain"], round(r["statistic"]["probability"], 6)) for r in facts["iptables"]["random_drop_rules"])


def test_random_drop_and_inject_on_the_host_lab(host_lab: str) -> None:
    ip = sh(HOST_LAB, "ip").strip()
    sh(HOST_LAB, "faults", "on")
    try:
        assert container_drops() == [("INPUT", 0.3), ("OUTPUT", 0.3)]
        assert loss_percent(ip) > 0
        r = ok(run_task("random_drop", state="absent", container="nginx"))
        assert r["changed"] and sorted(x["chain"] for x in r["removed"]) == ["INPUT", "OUTPUT"]
        assert r["target"]["kind"] == "container"
        assert no_loss(ip)
        assert container_drops() == []
        # inject.yml puts the seed's rules back (netem: not on this kernel)
        extra = ["-e", '{"packetloss_inject_containers": ["nginx"], "packetloss_inject_netem": false}']
        recap, out = playbook("inject.yml", *extra)
        assert recap["failed"] == 0 and recap["changed"] == 1, out[-2000:]
        assert container_drops() == [("INPUT", 0.3), ("OUTPUT", 0.3)]
        recap, out = playbook("inject.yml", *extra)
        assert recap["failed"] == 0 and recap["changed"] == 0, out[-2000:]
        recap, out = playbook("inject.yml", "-e", "packetloss_inject_state=absent", *extra)
        assert recap["failed"] == 0 and recap["changed"] == 1 and container_drops() == []
    finally:
        sh(HOST_LAB, "faults", "off")


def test_remediate_playbook_on_the_host_lab(host_lab: str) -> None:
    ip = sh(HOST_LAB, "ip").strip()
    sh(HOST_LAB, "faults", "on")
    extra = ["-e", '{"packetloss_containers": ["nginx"], "packetloss_backup": false}']
    try:
        recap, out = playbook("remediate.yml", "--check", "--diff", *extra)
        assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
        assert "--A INPUT -m statistic --mode random --probability 0.29999999981 -j DROP" in out
        assert container_drops() == [("INPUT", 0.3), ("OUTPUT", 0.3)]  # check mode changed nothing
        recap, out = playbook("remediate.yml", *extra)
        assert recap["failed"] == 0 and recap["changed"] == 1, out[-3000:]
        assert said(out, "every cause removed is gone")
        assert container_drops() == [] and no_loss(ip)
        recap, out = playbook("remediate.yml", *extra)
        assert recap["failed"] == 0 and recap["changed"] == 0, out[-3000:]
    finally:
        sh(HOST_LAB, "faults", "off")
