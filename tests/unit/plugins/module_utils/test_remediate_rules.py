# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_remediate_rules against cases/remediate_rules.yml: which rules of real dumps (with random drops added) are
chosen, the iptables-restore input, the nft transaction, and that removal gives back every real dump."""
from __future__ import annotations

import copy
import glob
import json
import os
import random
from typing import Any, Dict, List, Optional

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import rules as rr
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.common import RemediationError
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.rules import (
    delete_scripts,
    insert_rule_text,
    ipt_drill_args,
    is_drill_rule,
    native_drill_rule,
    native_fraction,
    nft_backup,
    nft_delete_batch,
    nft_listing,
    nft_listing_without,
    nft_predict,
    normalize_save,
    select_iptables,
    select_nft,
    selector_text,
    validate,
    without_lines,
)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import parse_iptables_save
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.nftables import parse_nft_json
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import FIXTURES, read

HERE = os.path.dirname(os.path.abspath(__file__))


CASES = yaml.safe_load(read(os.path.join(HERE, "cases", "remediate_rules.yml")))


def inject(text: str, additions: List[Dict[str, Any]]) -> str:
    """Insert each rule after the first line containing ``after`` (in ``table`` if given), else before ``table``'s COMMIT."""
    lines = text.splitlines()
    for add in additions:
        table, current, where = add.get("table"), None, None
        for i, line in enumerate(lines):
            if line.startswith("*"):
                current = line[1:].strip()
            if table is not None and current != table and not (current is None and "after" in add):
                continue
            if "after" in add and add["after"] in line:
                where = i + 1
                break
            if "after" not in add and line.strip() == "COMMIT":
                where = i
                break
        if where is None and "after" not in add and not any(l.startswith("*") for l in lines):
            where = len(lines)  # grep output: no tables
        assert where is not None, "cannot place %r" % add
        lines.insert(where, add["rule"])
    return "\n".join(lines) + "\n"


def dump_files() -> List[str]:
    out = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, "iptables", "**", "*"), recursive=True)):
        name = os.path.basename(path)
        if os.path.isfile(path) and not name.endswith((".json", ".t", ".txlate")):
            out.append(os.path.relpath(path, FIXTURES))
    return out


# ---- iptables ----

@pytest.mark.parametrize("case", CASES["iptables"], ids=[c["id"] for c in CASES["iptables"]])
def test_iptables_selection_script_and_undo(case: Dict[str, Any]) -> None:
    original = read(os.path.join(FIXTURES, case["fixture"]))
    text = inject(original, case["inject"])
    parsed = parse_iptables_save(text, family=case.get("family", "ipv4"), default_table=case.get("default_table", "filter"))
    chosen = select_iptables(parsed, case.get("table"), case.get("chain"))
    assert [[r["table"], r["chain"], r["spec"]] for r in chosen] == case["selected"]
    assert all(r["target"] in ("DROP", "REJECT") and r["statistic"]["mode"] in ("random", "nth") for r in chosen)
    assert delete_scripts(chosen) == case["scripts"]
    # removing the chosen lines gives back the dump, apart from the injected rules out of scope
    after = normalize_save(without_lines(text, set(r["line"] for r in chosen)))
    kept = case.get("keeps_injected", 0)
    if not kept:
        assert after == normalize_save(original)
    else:
        extra = [l for l in after.splitlines() if l not in normalize_save(original).splitlines()]
        assert len(extra) == kept, extra


def test_drops_only_parse_selects_the_same() -> None:
    """The module parses with drops_only (fast on big rulesets): same rules, same positions and lines."""
    for case in CASES["iptables"]:
        text = inject(read(os.path.join(FIXTURES, case["fixture"])), case["inject"])
        kwargs = dict(family=case.get("family", "ipv4"), default_table=case.get("default_table", "filter"))
        full = select_iptables(parse_iptables_save(text, **kwargs))
        fast = select_iptables(parse_iptables_save(text, drops_only=True, **kwargs))
        assert [(r["table"], r["chain"], r["position"], r["line"], r["spec"]) for r in full] == \
            [(r["table"], r["chain"], r["position"], r["line"], r["spec"]) for r in fast]


@pytest.mark.parametrize("rel", dump_files())
def test_every_real_dump_alone_has_nothing_to_remove(rel: str) -> None:
    text = read(os.path.join(FIXTURES, rel))
    parsed = parse_iptables_save(text, family="ipv6" if "6" in os.path.basename(rel) else "ipv4", source=rel)
    assert select_iptables(parsed) == []  # kube-proxy's statistic jumps, plain DROPs, policies: none is a random drop


_DROPS = st.sampled_from([
    "-m statistic --mode random --probability 0.30000000000 -j DROP",
    "-p tcp -m tcp --dport 80 -m statistic --mode random --probability 0.50000000000 -j DROP",
    "-m statistic --mode nth --every 3 --packet 1 -j REJECT --reject-with icmp-port-unreachable",
    "-m comment --comment \"x y\" -m statistic --mode random ! --probability 0.10000000009 -j DROP",
])


@settings(max_examples=60, deadline=None)
@given(rel=st.sampled_from([r for r in dump_files() if "grep" not in r and "rule.txt" not in r]),
       seed=st.integers(0, 2 ** 32 - 1), drops=st.lists(_DROPS, min_size=1, max_size=6))
def test_removal_gives_back_every_dump(rel: str, seed: int, drops: List[str]) -> None:
    """Random drops put anywhere in any real dump: exactly they are chosen, and removing them restores the dump."""
    original = read(os.path.join(FIXTURES, rel))
    lines = original.splitlines()
    rng = random.Random(seed)
    spots = [i for i, l in enumerate(lines) if l.lstrip("[0123456789:] ").startswith("-A ") or l.startswith(":")]
    if not spots:
        return
    added = []
    for drop in drops:
        i = rng.choice(spots)
        chain = lines[i].split()[0][1:] if lines[i].startswith(":") else lines[i].split("-A ", 1)[1].split()[0]
        lines.insert(i + 1, "-A %s %s" % (chain, drop))
        spots = [s + 1 if s > i else s for s in spots] + [i + 1]
        added.append((chain, drop))
    text = "\n".join(lines) + "\n"
    parsed = parse_iptables_save(text, drops_only=True)
    chosen = select_iptables(parsed)
    assert sorted((r["chain"], r["spec"]) for r in chosen) == sorted(added)
    assert normalize_save(without_lines(text, set(r["line"] for r in chosen))) == normalize_save(original)
    scripts = delete_scripts(chosen)
    assert sum(s.count("\n-D ") for s in scripts.values()) == len(added)


def test_normalize_save_drops_counters_comments_and_other_tables() -> None:
    text = ("# Generated by iptables-save\n*raw\n:PREROUTING ACCEPT [3:4]\nCOMMIT\n*filter\n:INPUT DROP [10:20]\n"
            "[1:2] -A INPUT -j ACCEPT\nCOMMIT\n# Completed\n")
    assert normalize_save(text) == "*raw\n:PREROUTING ACCEPT\nCOMMIT\n*filter\n:INPUT DROP\n-A INPUT -j ACCEPT\nCOMMIT\n"
    assert normalize_save(text, {"filter"}) == "*filter\n:INPUT DROP\n-A INPUT -j ACCEPT\nCOMMIT\n"


# ---- the drill rule ----

@pytest.mark.parametrize("case", CASES["drill"], ids=lambda c: c["args"])
def test_drill_args_are_what_iptables_save_prints(case: Dict[str, Any]) -> None:
    args = " ".join(ipt_drill_args(case["family"], case["protocol"], case["port"], case["probability"]))
    assert args == case["args"]
    rule = parse_iptables_save("*filter\n-A INPUT %s\nCOMMIT\n" % args, family=case["family"])["tables"]["filter"]["rules"][0]
    assert is_drill_rule(rule, case["protocol"], case["port"]) and rule["random_drop"]


@pytest.mark.parametrize("spec,protocol,port,same", CASES["same_drill"], ids=[c[0] + str(c[1:3]) for c in CASES["same_drill"]])
def test_same_drill_rule(spec: str, protocol: Optional[str], port: Optional[int], same: bool) -> None:
    rule = parse_iptables_save("*filter\n-A INPUT %s\nCOMMIT\n" % spec)["tables"]["filter"]["rules"][0]
    assert is_drill_rule(rule, protocol, port) is same


def test_insert_rule_text_predicts_the_top_of_the_chain() -> None:
    text = "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[1:2] -A INPUT -j ACCEPT\n-A OUTPUT -j ACCEPT\nCOMMIT\n"
    assert insert_rule_text(text, "filter", "OUTPUT", "X") == \
        "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[1:2] -A INPUT -j ACCEPT\n-A OUTPUT X\n-A OUTPUT -j ACCEPT\nCOMMIT\n"
    empty = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
    assert insert_rule_text(empty, "filter", "INPUT", "X") == "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT X\nCOMMIT\n"
    assert insert_rule_text("", "raw", "OUTPUT", "X") == "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT X\nCOMMIT\n"


@pytest.mark.parametrize("probability,mod,k", CASES["native_fraction"])
def test_native_fraction(probability: float, mod: int, k: int) -> None:
    assert native_fraction(probability) == (mod, k)
    assert abs(k / mod - probability) <= 1e-9


def test_native_drill_rule_is_a_random_drop_with_its_identity() -> None:
    rule = native_drill_rule("inet", "netdiag", "input", "tcp", 80, 0.25)
    parsed = parse_nft_json({"nftables": [{"rule": dict(rule, handle=5)}]})["rules"][0]
    assert parsed["random_drop"] and parsed["statistic"]["probability"] == pytest.approx(0.25)
    assert selector_text(rule["expr"]) == "tcp dport 80"
    # nft lists "meta l4proto tcp th dport 80" back as "tcp dport 80": the drill rule uses that form already
    assert selector_text(native_drill_rule("ip", "t", "c", "udp", None, 0.5)["expr"]) == "meta l4proto udp"
    assert selector_text(native_drill_rule("ip", "t", "c", None, None, 0.5)["expr"]) == ""


# ---- nft ----

@pytest.mark.parametrize("case", CASES["nft"], ids=[c["id"] for c in CASES["nft"]])
def test_nft_selection_and_batch(case: Dict[str, Any]) -> None:
    data = json.loads(read(os.path.join(FIXTURES, case["fixture"])))
    data = copy.deepcopy(data)
    for family, table, chain, handle, expr in case["inject"]:
        data["nftables"].append({"rule": {"family": family, "table": table, "chain": chain, "handle": handle, "expr": expr}})
    parsed = parse_nft_json(data)
    chosen = select_nft(parsed, set(case["families"]) if "families" in case else None)
    assert [r["handle"] for r in chosen] == case["selected"]
    assert nft_delete_batch(chosen) == case["batch"]


@pytest.mark.parametrize("case", CASES["nft_listing"], ids=[c["id"] for c in CASES["nft_listing"]])
def test_nft_listing(case: Dict[str, Any]) -> None:
    shown, rules = nft_listing(case["text"])
    assert shown == case["shown"]
    assert rules == dict((int(k), v) for k, v in case["rules"].items())
    assert nft_listing_without(case["text"], set(case["without"])) == case["shown_without"]


def test_nft_predict_insert_replace_create() -> None:
    listing = CASES["nft_listing"][0]["text"]
    first = nft_predict(listing, "inet", "chaos", "in", "NEW")
    assert first.splitlines()[3] == "\t\tNEW" and "numgen random mod 10 < 3" in first.splitlines()[4]
    replaced = nft_predict(listing, "inet", "chaos", "in", "NEW", replace=2)
    assert "numgen" not in replaced and replaced.splitlines()[3] == "\t\tNEW"
    other = nft_predict(listing, "inet", "chaos", "output", "NEW")
    assert "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t\tNEW\n\t}\n}\n" in other
    assert nft_predict("", "ip", "netdiag", "input", "NEW") == \
        "table ip netdiag {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tNEW\n\t}\n}\n"


def test_nft_backup_replaces_the_table_in_one_file() -> None:
    text = nft_backup("inet", "chaos", "table inet chaos {\n}\n")
    assert text.splitlines()[1:3] == ["table inet chaos", "delete table inet chaos"]


# ---- parameters ----

@pytest.mark.parametrize("params,needle", CASES["invalid"], ids=[str(c[0]) for c in CASES["invalid"]])
def test_invalid_parameters(params: Dict[str, Any], needle: str) -> None:
    with pytest.raises(RemediationError) as err:
        validate(params)
    assert needle in str(err.value)


def test_defaults_follow_state() -> None:
    assert validate({"state": "absent"}) == {"state": "absent", "table": None, "chain": None, "family": "all", "backend": "all"}
    v = validate({"state": "present", "chain": "INPUT", "probability": "0.3"})
    assert (v["family"], v["backend"], v["table"], v["probability"]) == ("ipv4", "auto", "filter", 0.3)
    v = validate({"state": "present", "chain": "input", "probability": 0.3, "backend": "nft-native", "family": "inet"})
    assert v["table"] == "netdiag"


@pytest.mark.parametrize("case", CASES["counters"], ids=[c["id"] for c in CASES["counters"]])
def test_policy_counters_and_lowered_counters(case: Dict[str, Any]) -> None:
    assert rr.policy_lines(parse_iptables_save(case["text"], drops_only=True), case["table"]) == case["policies"]
    if "script" in case:
        assert rr.with_policies(case["script"], case["policies"]) == case["restore"]
    assert rr.counters_lowered(case["text"], set(case["skip"]), case["after"], case.get("added")) == case["lowered"]
