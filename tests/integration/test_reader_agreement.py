"""Diagnose and remediation read the live rulesets alike: on every real ruleset under tests/ (the iptables-save
dumps loaded into both iptables backends, the nftables dumps loaded with nft -f), with random drops added,
iptables_facts and random_drop (check mode) find the same random-drop rules, rule for rule, and count the same rules.
Both modules run in this process (their main(), as Ansible runs them), so that one boundary can be made to fail:
nf_tables not answering the collection's own netlink dump (the kernel keeps its tables; everything else is real).
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import sys
from typing import Any, Dict, List, Set, Tuple

import pytest

from conftest import COLLECTIONS, ROOT
from test_remediate import dumps, family_of, in_ns, loadable

sys.path.insert(0, COLLECTIONS)
from ansible.module_utils.testing import patch_module_args  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netfilter  # noqa: E402
from ansible_collections.netdiag.packetloss.plugins.modules import iptables_facts, random_drop  # noqa: E402

NFT_DUMPS = os.path.join(ROOT, "tests", "unit", "fixtures", "nft", "nftables_shell_dumps")
Key = Tuple[Any, ...]


def main_of(module: Any, check: bool = False, **args: Any) -> Dict[str, Any]:
    """Run ``module.main()`` here with ``args``; its result."""
    out = io.StringIO()
    with patch_module_args(dict(args, _ansible_check_mode=check)), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(out.getvalue())


def ruleset_cases() -> List[str]:
    nft = sorted("nft:" + os.path.basename(p) for p in glob.glob(os.path.join(NFT_DUMPS, "*.nft")))
    return ["ipt:" + rel for rel in dumps()] + nft


def load(ns: str, case: str) -> int:
    """Load one real ruleset into ``ns`` and add random drops around it; how many were added (skip if refused)."""
    kind, rel = case.split(":", 1)
    added = 0
    if kind == "ipt":
        family = family_of(rel)
        prefix = "ip6tables" if family == "ipv6" else "iptables"
        loaded = [b for b in ("legacy", "nft")
                  if not in_ns(ns, "%s-%s-restore" % (prefix, b), "-w", data=loadable(rel), check=False).returncode]
        if not loaded:
            pytest.skip("%s refused by this kernel / iptables" % rel)
        for backend in loaded:
            for argv in (["-I", "INPUT", "1", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"],
                         ["-A", "OUTPUT", "-m", "statistic", "--mode", "nth", "--every", "3", "--packet", "0", "-j", "DROP"],
                         ["-A", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", "0.5", "-j", "ACCEPT"]):
                in_ns(ns, "%s-%s" % (prefix, backend), "-w", *argv)
            added += 2
    else:
        with open(os.path.join(NFT_DUMPS, rel)) as handle:
            if in_ns(ns, "nft", "-f", "-", data=handle.read(), check=False).returncode:
                pytest.skip("%s refused by this kernel / nft" % rel)
    in_ns(ns, "nft", "add table inet chaos; add chain inet chaos in { type filter hook input priority 10; }; "
                     "add rule inet chaos in numgen random mod 10 < 3 counter drop; "
                     "add rule inet chaos in numgen inc mod 4 vmap { 0 : drop, 1-3 : accept }; "
                     "add rule inet chaos in meta random & 1 == 0 accept")
    return added + 2


def facts_side(ns: str) -> Tuple[Set[Key], int, Dict[str, Any]]:
    facts = main_of(iptables_facts, netns=ns)
    ipt = facts["ansible_facts"]["packetloss"]["iptables"]
    keys = set((r["family"], r["backend"], r["table"], r["chain"], r["position"]) for r in ipt["rules"] if r["random_drop"])
    assert keys == set((r["family"], r["backend"], r["table"], r["chain"], r["position"]) for r in ipt["random_drop_rules"])
    return keys, ipt["rule_count"], ipt


def remediation_side(ns: str) -> Tuple[Set[Key], int, Dict[str, Any]]:
    dry = main_of(random_drop, check=True, netns=ns, state="absent")
    keys = set((r["family"], r["backend"], r["table"], r["chain"], r["position"]) for r in dry.get("removed", []))
    return keys, sum(s["rules"] for s in dry.get("scanned", [])), dry


@pytest.mark.parametrize("netlink", ["answers", "silent"])
@pytest.mark.parametrize("case", ruleset_cases())
def test_diagnose_and_remediation_agree(netns: str, case: str, netlink: str, monkeypatch: pytest.MonkeyPatch) -> None:
    added = load(netns, case)
    if netlink == "silent":
        monkeypatch.setattr(netfilter, "nft_tables", lambda: None)
    found, counted, ipt = facts_side(netns)
    removed, scanned, dry = remediation_side(netns)
    if not ipt["complete"]:  # a ruleset not read: the facts say so, and the removal refuses (fails closed)
        assert dry.get("failed") and "cannot read the rulesets" in dry["msg"], (ipt["unread"], dry)
        return
    assert not dry.get("failed"), dry.get("msg")
    assert found == removed, (sorted(found ^ removed), case)
    assert counted == scanned
    assert len(found) >= added  # the ones added, and any the dump holds
    assert dry["changed"] is True
    if netlink == "silent":
        assert any("listed with nft -j list tables" in note for note in ipt["notes"]), ipt["notes"]
