# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rulesets parsers against cases/rulesets.yml, iptables' and nftables' own dumps and the counts their
manifests state, and the iptables-nft-save / native nft pair."""
from __future__ import annotations

import copy
import json
import os
import re
from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import (
    is_random_drop,
    parse_iptables_save,
)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.nftables import parse_nft_json
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import assert_subset, fixture, read

HERE = os.path.dirname(os.path.abspath(__file__))


CASES = yaml.safe_load(read(os.path.join(HERE, "cases", "rulesets.yml")))


def all_rules(parsed: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [rule for table in parsed["tables"].values() for rule in table["rules"]]


# ---- iptables-save ----

@pytest.mark.parametrize("case", CASES["iptables"], ids=[c["id"] for c in CASES["iptables"]])
def test_iptables_case(case: Dict[str, Any]) -> None:
    text = fixture(case["fixture"]) if "fixture" in case else case["text"]
    parsed = parse_iptables_save(text, family=case.get("family", "ipv4"), backend=case.get("backend", "legacy"),
                                 source=case.get("fixture", "test"), default_table=case.get("default_table", "filter"))
    rules = all_rules(parsed)
    assert len(rules) == case["n_rules"]
    for key, count in case.get("chain_rule_counts", {}).items():
        table, chain = key.split("/")
        assert chain in parsed["tables"][table]["chains"]
        assert sum(1 for r in parsed["tables"][table]["rules"] if r["chain"] == chain) == count, key
    for table, names in case.get("table_chains", {}).items():
        assert list(parsed["tables"][table]["chains"]) == names
    for key, subset in case.get("chains", {}).items():
        table, chain = key.split("/")
        assert_subset(parsed["tables"][table]["chains"][chain], subset, key)
    for subset in case.get("rules", []):
        assert "random_drop" in subset, "each rule case says whether the rule is a random drop: %r" % subset
        found = [r for r in rules if (r["table"], r["chain"], r["position"]) == (subset["table"], subset["chain"], subset["position"])]
        assert len(found) == 1, subset
        assert_subset(found[0], subset, "%s/%s#%s" % (subset["table"], subset["chain"], subset["position"]))


@pytest.mark.parametrize("case", CASES["iptables_errors"], ids=[c["id"] for c in CASES["iptables_errors"]])
def test_iptables_error(case: Dict[str, Any]) -> None:
    text = case["huge"].replace("{N}", "9" * 5000) if "huge" in case else case["text"]
    with pytest.raises(ParseError) as info:
        parse_iptables_save(text, source="dump")
    assert case["error"] in str(info.value)


IPTABLES_MANIFEST = json.loads(fixture("iptables/manifest.json"))["files"]


@pytest.mark.parametrize("name", sorted(IPTABLES_MANIFEST))
def test_iptables_manifest_counts(name: str) -> None:
    """The corpus manifest's per-file counts (computed by its authors with shlex; -j DROP only)."""
    counts = IPTABLES_MANIFEST[name]["counts_computed_by_us"]
    parsed = parse_iptables_save(fixture("iptables/" + name), source=name)
    rules = all_rules(parsed)
    assert len(rules) == counts["n_rules"]
    assert sum(r["target"] == "DROP" for r in rules) == counts["n_drop_rules"]
    assert sum(r["target"] == "REJECT" for r in rules) == counts["n_reject_rules"]
    assert sum(r["statistic"] is not None for r in rules) == counts["n_statistic_rules"]
    assert sum(r["random_drop"] for r in rules) == counts["n_statistic_and_drop_rules"] == 0
    assert ["%s/%s" % (t, c) for t, table in parsed["tables"].items() for c, chain in table["chains"].items()
            if chain["policy"] == "DROP"] == counts["chains_with_policy_DROP"]
    for table, chains in counts["chain_policies"].items():
        for chain, want in chains.items():
            got = parsed["tables"][table]["chains"][chain]
            assert (got["policy"] or "-", got["packets"], got["bytes"]) == (want["policy"], want["pkts"], want["bytes"])
    for key, want in counts["per_chain"].items():
        table, chain = key.split("/")
        mine = [r for r in rules if r["chain"] == chain and (table == "None" or r["table"] == table)]
        assert (len(mine), sum(r["target"] == "DROP" for r in mine), sum(r["statistic"] is not None for r in mine),
                sum(r["target"] == "REJECT" for r in mine)) == (want["rules"], want["drop"], want["statistic"], want["reject"])
    for want in counts["drop_rules"] + counts["statistic_rules"]:
        mine = [r for r in rules if r["line"] == want["lineno"]]
        assert len(mine) == 1 and (mine[0]["chain"], mine[0]["position"], mine[0]["target"]) == \
            (want["chain"], want["index_in_chain"], want["target"])


RULE_LINE = re.compile(r"^(?:\[(\d+):(\d+)\] )?-A (\S+) ?(.*)$")


@pytest.mark.parametrize("name", sorted(IPTABLES_MANIFEST))
def test_iptables_every_append_line_is_one_rule(name: str) -> None:
    """Round trip: each "-A" line is exactly one rule whose spec is the line after "-A CHAIN",
    in file order, with positions 1, 2, 3... in each chain."""
    text = fixture("iptables/" + name)
    parsed = parse_iptables_save(text, source=name)
    lines = [(n, RULE_LINE.match(line.strip())) for n, line in enumerate(text.splitlines(), 1) if RULE_LINE.match(line.strip())]
    rules = sorted(all_rules(parsed), key=lambda r: r["line"])
    assert [(n, m.group(3), m.group(4)) for n, m in lines] == [(r["line"], r["chain"], r["spec"]) for r in rules]
    for n, m in lines:
        if m.group(1):
            assert next(r for r in rules if r["line"] == n)["counters"] == {"packets": int(m.group(1)), "bytes": int(m.group(2))}
    for table in parsed["tables"].values():
        for chain in table["chains"]:
            assert [r["position"] for r in table["rules"] if r["chain"] == chain] == \
                list(range(1, 1 + sum(r["chain"] == chain for r in table["rules"])))


SAVE_DUMPS = sorted(n for n in IPTABLES_MANIFEST if "\n*filter" in "\n" + fixture("iptables/" + n))
RANDOM_DROPS = [
    ("-m statistic --mode random --probability 0.30000000004 -j DROP", {"mode": "random", "probability": 0.30000000004}),
    ("-p udp -m statistic --mode nth --every 3 --packet 0 -j REJECT --reject-with icmp-port-unreachable",
     {"mode": "nth", "every": 3, "packet": 0, "probability": None}),
]


@pytest.mark.parametrize("name", SAVE_DUMPS)
@pytest.mark.parametrize("rule,statistic", RANDOM_DROPS)
def test_injected_random_drop_leaves_the_rest_untouched(name: str, rule: str, statistic: Dict[str, Any]) -> None:
    """No real dump drops randomly: add one rule to the filter table and find exactly it."""
    text = fixture("iptables/" + name)
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "*filter") + 1
    while lines[at].startswith(":"):
        at += 1
    lines.insert(at, ":NETDIAG_TEST - [0:0]")
    lines.insert(at + 1, "-A NETDIAG_TEST " + rule)
    before, after = parse_iptables_save(text), parse_iptables_save("\n".join(lines))
    drops = [r for r in all_rules(after) if r["random_drop"]]
    assert len(drops) == 1
    assert (drops[0]["table"], drops[0]["chain"], drops[0]["position"], drops[0]["spec"]) == ("filter", "NETDIAG_TEST", 1, rule)
    assert_subset(drops[0]["statistic"], statistic)
    del after["tables"]["filter"]["chains"]["NETDIAG_TEST"]
    after["tables"]["filter"]["rules"].remove(drops[0])
    after["tables"]["filter"]["rule_count"] -= 1
    for r in all_rules(after):
        r["line"] -= 2 if r["line"] > at + 1 else 0
    assert after == before
    # drops_only lists the same random drop (true position) and every DROP/REJECT rule of the dump
    quick = parse_iptables_save("\n".join(lines), drops_only=True)
    quick_rules = all_rules(quick)
    assert [r for r in quick_rules if r["random_drop"]] == drops
    full = all_rules(parse_iptables_save("\n".join(lines)))
    assert [r for r in quick_rules if r["target"] in ("DROP", "REJECT")] == [r for r in full if r["target"] in ("DROP", "REJECT")]
    assert sum(t["rule_count"] for t in quick["tables"].values()) == len(all_rules(after)) + 1


def test_kube_proxy_statistic_jumps_are_not_drops() -> None:
    parsed = parse_iptables_save(fixture("iptables/kubernetes_website/debug-service__iptables-save_grep_hostnames.txt"))
    stats = [r for r in all_rules(parsed) if r["statistic"]]
    assert [r["statistic"]["probability"] for r in stats] == [0.33332999982, 0.5]
    assert not any(r["random_drop"] for r in all_rules(parsed))
    # the same rule with -j DROP is a random drop
    text = "-A X -m statistic --mode random --probability 0.33332999982 -j DROP\n"
    assert all_rules(parse_iptables_save(text))[0]["random_drop"] is True


def extension_tests(name: str) -> List[Dict[str, str]]:
    """iptables' libxt *.t files: ":CHAINS" lines, then "rule;printed;OK|FAIL" lines."""
    out = []
    for line in fixture("iptables/netfilter_iptables/extensions/" + name).splitlines():
        if line and not line.startswith(":"):
            rule, printed, verdict = line.split(";")
            out.append({"rule": rule, "printed": rule if printed == "=" else printed, "verdict": verdict})
    return out


@pytest.mark.parametrize("name", ["libxt_statistic.t", "libxt_standard.t"])
def test_extension_forms_iptables_accepts(name: str) -> None:
    for case in extension_tests(name):
        if case["verdict"] != "OK":
            continue
        rule = all_rules(parse_iptables_save("-A INPUT %s\n" % case["printed"]))[0]
        assert rule["spec"] == case["printed"]
        if name == "libxt_statistic.t":
            assert rule["statistic"] == CASES["statistic_forms"][case["rule"]]


@pytest.mark.parametrize("case", CASES["translations"], ids=[c["nft"] for c in CASES["translations"]])
def test_statistic_translations_agree(case: Dict[str, Any]) -> None:
    """libxt_statistic.txlate: the iptables rule and its nft translation give the same statistic."""
    txlate = fixture("iptables/netfilter_iptables/extensions/libxt_statistic.txlate")
    assert "iptables-translate -A OUTPUT %s\nnft 'add rule ip filter OUTPUT %s'" % (case["iptables"], case["nft"]) in txlate
    for verdict, target in ((None, None), ({"drop": None}, "DROP")):
        ipt = all_rules(parse_iptables_save("-A OUTPUT %s%s\n" % (case["iptables"], " -j " + target if target else "")))[0]
        expr = case["expr"] + ([verdict] if verdict else [])
        nft = parse_nft_json({"nftables": [{"rule": {"family": "ip", "table": "filter", "chain": "OUTPUT", "expr": expr}}]})["rules"][0]
        for key in ("mode", "every", "packet", "negated"):
            assert nft["statistic"][key] == ipt["statistic"][key], key
        expected = ipt["statistic"]["probability"] or case["probability"]
        assert nft["statistic"]["probability"] == pytest.approx(expected, abs=1e-8)
        # `nft list` prints the counter it was given with its values
        assert nft["spec"] == case["nft"].replace("counter", "counter packets 0 bytes 0") + (" drop" if verdict else "")
        assert nft["random_drop"] is ipt["random_drop"] is (verdict is not None)


@pytest.mark.parametrize("case", CASES["is_random_drop"])
def test_is_random_drop(case: Dict[str, Any]) -> None:
    assert is_random_drop(case["rule"]) is case["expect"]


# ---- nft -j list ruleset ----

def one_rule(expr: List[Any]) -> Dict[str, Any]:
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, {"table": {"family": "inet", "name": "t", "handle": 1}},
                         {"chain": {"family": "inet", "table": "t", "name": "c", "handle": 2}},
                         {"rule": {"family": "inet", "table": "t", "chain": "c", "handle": 3, "expr": expr}}]}


@pytest.mark.parametrize("case", CASES["nft_rules"], ids=[c["id"] for c in CASES["nft_rules"]])
def test_nft_rule(case: Dict[str, Any]) -> None:
    for data in (one_rule(case["expr"]), json.dumps(one_rule(case["expr"])), json.dumps(one_rule(case["expr"])).encode()):
        rule = parse_nft_json(data)["rules"][0]
        assert "random_drop" in case["expect"], "each rule case says whether the rule is a random drop"
        assert_subset(rule, dict(case["expect"], family="inet", table="t", chain="c", position=1, handle=3, backend="nft-native"))


@pytest.mark.parametrize("case", CASES["nft_errors"], ids=[c["id"] for c in CASES["nft_errors"]])
def test_nft_error(case: Dict[str, Any]) -> None:
    if "deep" in case:
        depth = case.get("depth", 500)
        case = dict(case, data=case["deep"].replace("{OPEN}", case["open"] * depth).replace("{CLOSE}", case["close"] * depth))
    with pytest.raises(ParseError) as info:
        parse_nft_json(bytes(case["bytes"]) if "bytes" in case else case["data"], source="ruleset.json")
    assert case["error"] in str(info.value) and info.value.source == "ruleset.json"


NFT_MANIFEST = json.loads(fixture("nft/manifest.json"))
NFT_DUMPS = sorted(NFT_MANIFEST["nftables_shell_dumps"])


@pytest.mark.parametrize("name", NFT_DUMPS + sorted(NFT_MANIFEST["insights_core"]))
def test_nft_manifest_counts(name: str) -> None:
    entry = dict(NFT_MANIFEST["nftables_shell_dumps"], **NFT_MANIFEST["insights_core"])[name]
    counts = entry["json_counts"]
    parsed = parse_nft_json(fixture("nft/" + name), source=name)
    rules, chains = parsed["rules"], parsed["chains"]
    mine = {
        "tables": len(parsed["tables"]), "chains": len(chains), "base_chains": sum(c["base"] for c in chains),
        "rules": len(rules),
        "rules_with_drop_verdict": sum(r["verdict"] == "drop" for r in rules),
        "rules_with_reject": sum(r["verdict"] == "reject" for r in rules),
        "chains_policy_drop": ["%s %s %s" % (c["family"], c["table"], c["name"]) for c in chains if c["policy"] == "drop"],
        "counter_packets_total": sum(r["counters"]["packets"] for r in rules if r["counters"]),
        "counter_bytes_total": sum(r["counters"]["bytes"] for r in rules if r["counters"]),
        "rules_with_nonzero_counter": sum(bool(r["counters"] and r["counters"]["packets"]) for r in rules),
        "rules_with_numgen": sum(bool(r["statistic"] and r["statistic"]["source"] == "numgen") for r in rules),
        "rules_with_meta_random": sum(bool(r["statistic"] and r["statistic"]["source"] == "meta random") for r in rules),
        "named_counters": dict(("%s %s %s" % (c["family"], c["table"], c["name"]), {"packets": c["packets"], "bytes": c["bytes"]})
                               for c in parsed["named_counters"]),
        "drop_rules": [{"family": r["family"], "table": r["table"], "chain": r["chain"], "counter": r["counters"]}
                       for r in rules if r["verdict"] == "drop"],
    }
    # rules_with_counter is not compared: the manifest's script counts "counter name <map>" but not "counter name x"
    assert mine == dict((k, counts[k]) for k in mine)
    assert not any(r["random_drop"] for r in rules)
    text = entry.get("text_counts_heuristic")
    if text:  # the .nft twin is the same ruleset as text
        assert (len(rules), mine["rules_with_drop_verdict"], len(mine["chains_policy_drop"])) == \
            (text["rules"], text["rules_ending_in_drop_verdict"], text["chains_policy_drop"])
    positions: Dict[Any, int] = {}
    for r in rules:
        key = (r["family"], r["table"], r["chain"])
        positions[key] = positions.get(key, 0) + 1
        assert r["position"] == positions[key]


def test_nft_insights_core_expectations() -> None:
    """insights-core test_nftables.py assertions."""
    doc = parse_nft_json(fixture("nft/insights_core/NTT_LIST_RULESET_DOC.json"))
    assert [t["name"] for t in doc["tables"] if t["family"] == "ip"] == ["table1"]
    assert [(c["name"], c["type"]) for c in doc["chains"]] == [("chain1", "filter")]
    assert len([r for r in doc["rules"] if r["chain"] == "chain1"]) == 2
    assert doc["rules"][1]["spec"] == "tcp dport 22 counter packets 29 bytes 1976 accept"

    out = parse_nft_json(fixture("nft/insights_core/NTT_LIST_RULESET_OUTPU1.json"))
    assert [t["name"] for t in out["tables"] if t["family"] == "ip"] == ["example_table", "nftables_svc"]
    chain = next(c for c in out["chains"] if c["name"] == "example_chain")
    assert (chain["type"], chain["hook"], chain["prio"], chain["policy"]) == ("filter", "input", 0, "accept")
    assert len([r for r in out["rules"] if r["chain"] == "example_chain"]) == 1
    svc = [r for r in out["rules"] if (r["table"], r["chain"]) == ("nftables_svc", "INPUT")]
    assert [r["verdict"] for r in svc] == ["accept", "accept", "reject"]

    two = parse_nft_json(fixture("nft/insights_core/NTT_LIST_RULESET_TWO_CHAINS.json"))
    assert len([c for c in two["chains"] if c["table"] == "example_table"]) == 2
    assert len([r for r in two["rules"] if r["chain"] == "postrouting"]) == 1
    assert next(r for r in two["rules"] if r["handle"] == 7)["counters"] == {"packets": 808, "bytes": 61250}

    empty = parse_nft_json(fixture("nft/insights_core/EMPTY_OUTPUT.json"))
    assert (empty["tables"], empty["rules"], empty["metainfo"]["version"]) == ([], [], "0.9.3")


def test_nft_injected_random_drop() -> None:
    """Add a numgen random drop to a real ruleset: exactly that rule is flagged, the rest is unchanged."""
    data = json.loads(fixture("nft/nftables_shell_dumps/packetpath__set_lookups.json-nft"))
    before = parse_nft_json(data)
    last = next(i for i, item in reversed(list(enumerate(data["nftables"]))) if "rule" in item)
    rule = copy.deepcopy(data["nftables"][last])
    rule["rule"]["expr"] = [{"match": {"op": "<", "left": {"numgen": {"mode": "random", "mod": 100, "offset": 0}}, "right": 30}},
                            {"counter": {"packets": 7, "bytes": 420}}, {"drop": None}]
    data["nftables"].insert(last + 1, rule)
    after = parse_nft_json(data)
    drops = [r for r in after["rules"] if r["random_drop"]]
    assert len(drops) == 1 and drops[0]["statistic"]["probability"] == pytest.approx(0.3)
    assert drops[0]["position"] == 1 + max(r["position"] for r in before["rules"] if r["chain"] == drops[0]["chain"])
    after["rules"].remove(drops[0])
    assert after == before


def nft_text_rules(text: str) -> Dict[str, List[str]]:
    """Rule lines per chain of an `nft list ruleset` text (no sets/maps in the file used)."""
    chains: Dict[str, List[str]] = {}
    chain = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("chain "):
            chain = line.split()[1]
            chains[chain] = []
        elif line == "}":
            chain = None
        elif chain and line and not line.startswith(("#", "type ")):
            chains[chain].append(line)
    return chains


def test_iptables_nft_save_matches_native_nft_text() -> None:
    """iptables' nft-only/0010 test: the native nft ruleset prints as this iptables-nft-save dump."""
    native = nft_text_rules(fixture("nft/netfilter_iptables/nft-only__0010-nft-native.txt"))
    saved = parse_iptables_save(fixture("iptables/netfilter_iptables/dumps/nft-only__0010-iptables-nft-save.txt"), backend="nft")
    table = saved["tables"]["filter"]
    assert [c for c in table["chains"] if any(r["chain"] == c for r in table["rules"])] == list(native)
    for chain, lines in native.items():
        rules = [r for r in table["rules"] if r["chain"] == chain]
        assert len(rules) == len(lines), chain
        for line, rule in zip(lines, rules):
            verdict = line.split()[-1]
            if verdict in ("accept", "drop"):
                assert rule["target"] == verdict.upper(), line
            else:
                assert rule["target"] not in ("ACCEPT", "DROP"), line
            assert rule["backend"] == "nft"


def test_rules_nft_cannot_name_make_their_table_unread() -> None:
    """Issue 14 item 2 with an older nft ({"xt": null}): the table is reported unread, never clean."""
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import opaque_drops
    data = {"nftables": [{"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 7,
                                   "expr": [{"xt": None}, {"drop": None}]}},
                         {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 8,
                                   "expr": [{"xt": None}, {"accept": None}]}},
                         {"rule": {"family": "inet", "table": "t", "chain": "c", "handle": 2, "expr": [{"drop": None}]}}]}
    unread = opaque_drops([parse_nft_json(data)])
    assert [(u["family"], u["backend"], u["table"], u["cause"]) for u in unread] == [("ip", "nft-native", "filter", "unreadable")]
    assert "1 drop rule(s) in table ip filter (handles 7)" in unread[0]["reason"]


NFT_LIST_CASES = [
    # (what nft -j list tables does: output, or (cause, reason); kernel_has("NF_TABLES"); tables, a note, unread)
    ('{"nftables": [{"metainfo": {}}, {"table": {"family": "ip", "name": "filter", "handle": 1}}]}', True,
     [("ip", "filter")], "listed with nft -j list tables", False),
    (("unreadable", "nft -j list tables failed (exit 1): Error: Protocol not supported"), None, None, "has none", False),
    (("missing_binary", "nft is not installed (not found in PATH)"), False, None, "has none", False),
    (("missing_binary", "nft is not installed (not found in PATH)"), None, None, None, True),
    (("missing_binary", "nft is not installed (not found in PATH)"), True, None, None, True),
    (("unreadable", "nft -j list tables failed (exit 1): Error: Permission denied"), True, None, None, True),
    ("not json", True, None, None, True),
]


@pytest.mark.parametrize("nft,has,tables,note,unread", NFT_LIST_CASES)
def test_nft_tables_when_netlink_does_not_answer(monkeypatch: Any, nft: Any, has: Any, tables: Any, note: Any,
                                                 unread: bool) -> None:
    """nf_tables silent over netlink: listed with nft, or none (said in notes), or unread - never clean by default."""
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netfilter

    def run_all(jobs: Any, out: Any) -> Any:
        if isinstance(nft, str):
            yield jobs[0], nft
        else:
            out.append(netfilter._unread(jobs[0], nft[0], nft[1]))

    monkeypatch.setattr(netfilter, "nft_tables", lambda: None)
    monkeypatch.setattr(netfilter, "_run_all", run_all)
    monkeypatch.setattr(netfilter, "kernel_has", lambda option, module: has)
    live = netfilter.LiveRulesets()
    assert netfilter.nft_table_list(live) == tables
    assert bool(live.unread) is unread
    if note:
        assert any(note in n for n in live.notes), live.notes
    if unread:
        assert live.unread[0]["backend"] == "nft" and "did not answer over netlink" in live.unread[0]["reason"]
