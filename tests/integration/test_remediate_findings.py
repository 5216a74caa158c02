# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""remediate.yml acts on the findings on this kernel: real namespaces and real rulesets (iptables-nft, iptables-legacy,
native nftables). An allow-list keeps the intended random drops and the rest go; selection by target and severity;
a run whose scope holds an allowed rule is refused and changes nothing; the role's argument_specs and the action
refuse bad input before anything is read."""
from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from conftest import ROOT, said, sh

LOADTEST = "[?id=='netfilter.random_drop' && evidence.rule.chain=='LOADTEST']"


def playbook(*extra: str, check: bool = False) -> Tuple[int, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    argv = ["ansible-playbook", os.path.join(ROOT, "playbooks", "remediate.yml")] + list(extra) + (["--check", "--diff"] if check else [])
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT, check=False)
    return proc.returncode, proc.stdout


def rules(ns: str) -> Dict[str, List[str]]:
    """Every rule line of the namespace, per backend (counters left out)."""
    out = {}
    for name, argv in (("nft", ["iptables-nft-save"]), ("legacy", ["iptables-legacy-save"]), ("ip6", ["ip6tables-nft-save"]),
                       ("native", ["nft", "list", "ruleset"])):
        text = sh(*argv, ns=ns)
        out[name] = [re.sub(r"\[\d+:\d+\] ", "", l).strip() for l in text.splitlines()
                     if l.startswith("-A ") or (name == "native" and ("drop" in l or "jump" in l))]
    return out


@pytest.fixture
def two() -> Iterator[Tuple[str, str]]:
    """Two namespaces with random drops: a in INPUT (nft) and in the user chain LOADTEST (intended, nft), with a plain
    DROP and a jump next to them, and in the ip6 INPUT chain; b in OUTPUT (legacy) and a native nftables numgen drop."""
    names = ("ndr-a%s" % os.getpid(), "ndr-b%s" % os.getpid())
    for n in names:
        sh("ip", "netns", "add", n)
    a, b = names
    try:
        sh("iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "80", "-m", "statistic", "--mode", "random",
           "--probability", "0.3", "-j", "DROP", ns=a)
        sh("iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP", ns=a)
        sh("iptables-nft", "-N", "LOADTEST", ns=a)
        sh("iptables-nft", "-A", "LOADTEST", "-m", "statistic", "--mode", "random", "--probability", "0.1", "-j", "DROP", ns=a)
        sh("iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "LOADTEST", ns=a)
        sh("ip6tables-nft", "-A", "INPUT", "-m", "statistic", "--mode", "nth", "--every", "4", "--packet", "0", "-j", "REJECT", ns=a)
        sh("iptables-legacy", "-A", "OUTPUT", "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP", ns=b)
        sh("nft", "add table inet chaos; add chain inet chaos input { type filter hook input priority 0; }; "
                  "add rule inet chaos input numgen random mod 10 < 3 drop", ns=b)
        yield a, b
    finally:
        for n in names:
            sh("ip", "netns", "del", n, check=False)


def scope(a: str, b: str, **more: Any) -> str:
    return json.dumps(dict({"packetloss_containers": "none", "packetloss_netns": [a, b], "packetloss_backup": False}, **more))


def test_allow_list_keeps_the_intended_random_drops_and_removes_the_rest(two: Tuple[str, str], tmp_path: Any) -> None:
    a, b = two
    before = {a: rules(a), b: rules(b)}
    backups = str(tmp_path / "backups")
    extra = scope(a, b, packetloss_remediate_allow=[{"expression": LOADTEST, "reason": "load test"}],
                  packetloss_backup=True, packetloss_backup_dir=backups)

    rc, out = playbook("-e", extra, check=True)
    assert rc == 0, out[-3000:]
    assert "--A INPUT -p tcp -m tcp --dport 80 -m statistic" in out and said(out, "would remove")
    assert {a: rules(a), b: rules(b)} == before  # check mode changes nothing

    rc, out = playbook("-e", extra)
    assert rc == 0, out[-3000:]
    assert said(out, "kept 1 as intended") and said(out, "verified: every cause removed is gone")
    # one backup per ruleset changed: a's ipv4 and ipv6 (nft), b's ipv4 (legacy) and its native table
    assert sorted(f.rsplit(".", 1)[-1] for f in os.listdir(backups)) == ["nft", "rules", "rules", "rules"]
    after_a, after_b = rules(a), rules(b)
    # exactly the random drops went; the intended one, the plain DROP and the jump stay, in order
    assert after_a["nft"] == [l for l in before[a]["nft"] if "dport 80" not in l]
    assert any("LOADTEST -m statistic --mode random" in l for l in after_a["nft"])
    assert after_a["ip6"] == [] and before[a]["ip6"]
    assert after_b["legacy"] == [] and before[b]["legacy"]
    assert not any("numgen" in l for l in after_b["native"]) and any("numgen" in l for l in before[b]["native"])

    rc, out = playbook("-e", extra)  # idempotent: the intended one stays, nothing else to do
    assert rc == 0 and re.search(r"localhost\s+:.*changed=0", out), out[-3000:]
    assert rules(a) == after_a


def test_without_allow_list_one_run_removes_everything_selected(two: Tuple[str, str]) -> None:
    a, b = two
    rc, out = playbook("-e", scope(a, b, packetloss_remediate_targets=["netns:%s" % b]))
    assert rc == 0, out[-3000:]
    after_a, after_b = rules(a), rules(b)
    assert sum("statistic" in l for l in after_a["nft"]) == 2, after_a  # a was not selected: untouched
    assert after_b["legacy"] == [] and not any("numgen" in l for l in after_b["native"])


def test_a_run_whose_scope_holds_an_allowed_rule_is_refused(two: Tuple[str, str]) -> None:
    a, b = two
    # a second random drop in LOADTEST that is not intended: random_drop with chain LOADTEST would remove both
    sh("iptables-nft", "-A", "LOADTEST", "-p", "udp", "-m", "statistic", "--mode", "random", "--probability", "0.5",
       "-j", "DROP", ns=a)
    allow = ["[?id=='netfilter.random_drop' && evidence.rule.chain=='LOADTEST' && evidence.rule.probability < `0.2`]"]
    before = rules(a)
    rc, out = playbook("-e", scope(a, b, packetloss_remediate_allow=allow))
    assert rc != 0 and said(out, "would also remove") and said(out, "nothing of it was removed"), out[-3000:]
    after = rules(a)
    assert [l for l in after["nft"] if "LOADTEST" in l] == [l for l in before["nft"] if "LOADTEST" in l]
    assert not any("dport 80 -m statistic" in l for l in after["nft"])  # the other scopes were still acted on


@pytest.mark.parametrize("extra,message", [
    ({"packetloss_remediate_min_severity": "severe"}, "packetloss_remediate_min_severity must be one of"),
    ({"packetloss_remediations": ["tbf"]}, "packetloss_remediations"),
    ({"packetloss_remediate_findings": {"id": "qdisc.netem"}}, "packetloss_remediate_findings"),
    ({"packetloss_verify": "maybe"}, "packetloss_verify"),
    ({"packetloss_remediate_targets": ["pod:x"]}, "invalid target label 'pod:x'"),
    ({"packetloss_remediate_allow": ["[?id=='qdisc.netem'"]}, "invalid JMESPath expression"),
    ({"packetloss_remediate_allow": [{"reason": "no expression"}]}, "each allow-list entry must be"),
    ({"packetloss_probe_targets": [{"port": 80}]}, "host (a name or address) is required"),
    ({"packetloss_thresholds": {"qdisc.nope": {"severity": "info"}}}, "qdisc.nope"),
])
def test_bad_input_is_refused_before_anything_is_read(two: Tuple[str, str], extra: Dict[str, Any], message: str) -> None:
    a, b = two
    before = {a: rules(a), b: rules(b)}
    rc, out = playbook("-e", scope(a, b, **extra))
    assert rc != 0 and message in out, out[-3000:]
    assert "Remove the selected causes" not in out or "fatal" in out
    assert {a: rules(a), b: rules(b)} == before
