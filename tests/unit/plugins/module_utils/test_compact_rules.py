# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rules_format=compact on every real ruleset under fixtures/: every rule of the full form is the line at its position
in rule_lines, the rules kept as dictionaries are those that can drop, and the analyzer finds the same with either."""
from __future__ import annotations

import glob
import os
from typing import Any, Dict, List, Tuple

import pytest

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import Collector
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import can_drop, compact_line
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import HOST
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import FIXTURES

DROPS = ("-A INPUT -m statistic --mode random --probability 0.30000000000 -j DROP\n"
         "-A OUTPUT -p udp -j REJECT --reject-with icmp-port-unreachable\n")


def sources() -> List[Tuple[str, str]]:
    out = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, "iptables", "**", "*"), recursive=True)):
        if os.path.isfile(path) and not path.endswith((".json", ".t", ".txlate")):
            out.append(("ip6tables_src" if "ip6" in os.path.basename(path).lower() else "iptables_src", path))
    for path in sorted(glob.glob(os.path.join(FIXTURES, "nft", "**", "*.json"), recursive=True)):
        out.append(("nft_src", path))
    return out


def collect(key: str, path: str, **kwargs: Any) -> Dict[str, Any]:
    layer = Collector(**dict(kwargs, **{key: path})).collect(HOST, ["iptables"])["iptables"]
    if not layer.get("available", True):
        pytest.skip("not parsed: %s" % layer.get("reason"))
    return layer


def with_drops(tmp_path: Any, key: str, path: str) -> str:
    """The dump with a random drop and a REJECT rule appended in a *filter table of their own (so that findings come)."""
    if key == "nft_src":
        return path
    copy = tmp_path / os.path.basename(path)
    with open(path) as handle:
        text = handle.read()
    copy.write_text(text + "\n*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + DROPS + "COMMIT\n")
    return str(copy)


@pytest.mark.parametrize("key,path", sources(), ids=[os.path.relpath(p, FIXTURES) for _k, p in sources()])
def test_compact_lists_every_rule_and_keeps_the_drops(tmp_path: Any, key: str, path: str) -> None:
    path = with_drops(tmp_path, key, path)
    full = collect(key, path)
    compact = collect(key, path, rules_format="compact")
    assert (full["rules_format"], compact["rules_format"]) == ("full", "compact") and "rule_lines" not in full
    chains = dict(((g["family"], g["backend"], g["table"], g["chain"]), g["rules"]) for g in compact["rule_lines"])
    assert sum(len(lines) for lines in chains.values()) == len(full["rules"]) == compact["rule_count"] == full["rule_count"]
    for rule in full["rules"]:
        assert chains[(rule["family"], rule["backend"], rule["table"], rule["chain"])][rule["position"] - 1] == compact_line(rule)
    # the dictionaries are what rules=drops lists: every rule that can drop (iptables: a superset, told from the text)
    assert collect(key, path, rules="drops")["rules"] == compact["rules"]
    kept = [r for r in full["rules"] if r in compact["rules"]]
    assert kept == compact["rules"] and all(r in kept for r in full["rules"] if can_drop(r))
    assert compact["random_drop_rules"] == full["random_drop_rules"]
    # the analysis is the same whichever form the facts have
    assert analyze({"iptables": compact}) == analyze({"iptables": full})
    if key != "nft_src":
        assert [f["id"] for f in analyze({"iptables": full})].count("netfilter.random_drop") >= 1


def test_compact_with_drops_lists_only_the_rules_that_can_drop(tmp_path: Any) -> None:
    key, path = sources()[0]
    path = with_drops(tmp_path, key, path)
    compact = collect(key, path, rules="drops", rules_format="compact")
    lines = [line for g in compact["rule_lines"] for line in g["rules"]]
    assert compact["rules_listed"] == "drops" and sorted(lines) == sorted(compact_line(r) for r in compact["rules"])
