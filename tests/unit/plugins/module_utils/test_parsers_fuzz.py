# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests: on any input every parser returns its declared type or raises ParseError, nothing else.

Inputs are arbitrary text/bytes/JSON and real fixtures with random damage (cut, spliced, lines
dropped or repeated, JSON nodes replaced), which reach much deeper into the parsers than noise.
"""
from __future__ import annotations

import copy
import json
import struct
from typing import Any, Callable, Dict, List

from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.netdiag.packetloss.plugins.module_utils import _procfs, _rulesets, _tc_text
from ansible_collections.netdiag.packetloss.plugins.module_utils._parse_errors import ParseError
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import fixture

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_counters(x: Any) -> bool:
    return isinstance(x, dict) and all(isinstance(k, str) and is_int(v) for k, v in x.items())


def check_sections(result: Any) -> None:
    assert isinstance(result, dict) and all(isinstance(k, str) and is_counters(v) for k, v in result.items())


def check_softnet(result: Any) -> None:
    assert isinstance(result, list) and all(is_counters(row) for row in result)


def check_conntrack(result: Any) -> None:
    assert set(result) == {"per_cpu", "total"} and is_counters(result["total"])
    assert isinstance(result["per_cpu"], list) and all(is_counters(cpu) for cpu in result["per_cpu"])


def check_int(result: Any) -> None:
    assert is_int(result)


def check_rule(rule: Any, action: str) -> None:
    assert isinstance(rule, dict) and isinstance(rule["spec"], str) and is_int(rule["position"]) and rule["position"] >= 1
    assert isinstance(rule["random_drop"], bool) and rule["random_drop"] is _rulesets.is_random_drop(rule)
    assert rule[action] is None or isinstance(rule[action], str)
    assert rule["counters"] is None or is_counters(rule["counters"])
    assert rule["statistic"] is None or isinstance(rule["statistic"], dict)


def check_iptables(result: Any) -> None:
    assert isinstance(result["tables"], dict)
    for table in result["tables"].values():
        assert isinstance(table["chains"], dict) and isinstance(table["rules"], list)
        for rule in table["rules"]:
            check_rule(rule, "target")
            assert all(isinstance(m["args"], dict) and isinstance(m["negated"], list) for m in rule["matches"])
    json.dumps(result)


def check_nft(result: Any) -> None:
    assert result["backend"] == "nft-native"
    for key in ("tables", "chains", "rules", "named_counters"):
        assert isinstance(result[key], list)
    for rule in result["rules"]:
        check_rule(rule, "verdict")
        assert isinstance(rule["xt"], bool)
    json.dumps(result)


def check_tc(result: Any) -> None:
    assert isinstance(result, list)
    for entry in result:
        assert isinstance(entry["kind"], str) and isinstance(entry["handle"], str) and isinstance(entry["root"], bool)
        assert isinstance(entry["options"], dict)
        if entry["kind"] == "netem":
            assert set(entry["options"]) == set(_tc_text.NETEM_KEYS)
        assert entry["stats"] is None or is_counters(entry["stats"])
    json.dumps(result)


def check_netem(result: Any) -> None:
    assert set(result) == set(_tc_text.NETEM_KEYS)
    json.dumps(result)


# parser, result check, real inputs to damage
TEXT_PARSERS: List[Any] = [
    (_procfs.parse_snmp, check_sections, ["procfs/prometheus_procfs/proc/26231/net/snmp", "procfs/insights_core/proc_netstat/PROC_NETSTAT"]),
    (_procfs.parse_snmp6, check_sections, ["procfs/insights_core/proc_snmp/PROC_SNMP6", "procfs/prometheus_procfs/proc/net/dev_snmp6/eth0"]),
    (_procfs.parse_softnet_stat, check_softnet, ["procfs/prometheus_procfs/proc/net/softnet_stat"]),
    (_procfs.parse_net_dev, check_sections, ["procfs/prometheus_procfs/proc/net/dev"]),
    (_procfs.parse_conntrack_stat, check_conntrack, ["procfs/prometheus_procfs_inline/case_new_format/proc/net/stat/nf_conntrack"]),
    (lambda text: _procfs.parse_int_file(text, "count"), check_int, []),
    (_rulesets.parse_iptables_save, check_iptables, ["iptables/netfilter_iptables/dumps/ipt-save__fedora27-iptables",
                                                     "iptables/kubernetes/parse_test__basic_test.iptables-restore.txt",
                                                     "iptables/netfilter_iptables/dumps/nft-only__0010-iptables-nft-save.txt"]),
    (_rulesets.parse_nft_json, check_nft, ["nft/nftables_shell_dumps/packetpath__set_lookups.json-nft"]),
    (_tc_text.parse_tc_qdisc_show, check_tc, ["tc/tcconfig/TcQdiscParser_parse__case2.txt", "tc/blockade/NORMAL_QDISC_SHOW.txt"]),
]
IDS = ["parse_snmp", "parse_snmp6", "parse_softnet_stat", "parse_net_dev", "parse_conntrack_stat", "parse_int_file",
       "parse_iptables_save", "parse_nft_json", "parse_tc_qdisc_show"]
EXTRA_TC = ("qdisc netem 8001: dev eth0 root refcnt 2 limit 1000 delay 100ms  10ms 25% loss state p13 1% p31 99% p32 0% "
            "p23 100% p14 0% duplicate 1% reorder 2% 3% corrupt 0.1% rate 20Kbit packetoverhead 4 slot 10ns 200ns "
            "packets 2000 bytes 9000 ecn gap 5\n Sent 1 bytes 1 pkt (dropped 0, overlimits 0 requeues 0)\n backlog 1Kb 1p requeues 0\n")
EXTRA_IPT = "-A X -m statistic --mode random ! --probability 0.3 -j DROP\n-A X -m statistic --mode nth --every 3 --packet 1 -c 1 2 -j REJECT\n"


def run(parser: Callable[[Any], Any], check: Callable[[Any], None], data: Any) -> None:
    try:
        result = parser(data)
    except ParseError as exc:
        assert isinstance(exc.source, str) and (exc.line is None or exc.line >= 1)
        return
    check(result)


def damage(text: str, draw: Any) -> str:
    """Up to three random edits: cut a span, insert noise, repeat or drop a line, truncate."""
    for _edit in range(draw(st.integers(0, 3))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 40)))
        edit = draw(st.sampled_from(["cut", "insert", "replace", "line", "truncate"]))
        noise = draw(st.text(alphabet=st.sampled_from(list(" \t\n-!:[]{}\"'%.0123456789abcxyzABCDEF,")), max_size=12))
        if edit == "cut":
            text = text[:i] + text[j:]
        elif edit == "insert":
            text = text[:i] + noise + text[i:]
        elif edit == "replace":
            text = text[:i] + noise + text[j:]
        elif edit == "truncate":
            text = text[:i]
        else:
            lines = text.splitlines(True)
            k = draw(st.integers(0, len(lines) - 1))
            lines[k:k + 1] = draw(st.sampled_from([[], [lines[k], lines[k]], [lines[k][::-1]]]))
            text = "".join(lines)
    return text


@SETTINGS
@given(st.sampled_from(range(len(TEXT_PARSERS))), st.text())
def test_any_text(index: int, text: str) -> None:
    parser, check = TEXT_PARSERS[index][:2]
    run(parser, check, text)


@SETTINGS
@given(st.sampled_from(range(len(TEXT_PARSERS))), st.binary())
def test_any_bytes(index: int, data: bytes) -> None:
    parser, check = TEXT_PARSERS[index][:2]
    run(parser, check, data)


SEEDS = [(i, fixture(rel)) for i, (_parser, _check, rels) in enumerate(TEXT_PARSERS) for rel in rels] + \
    [(IDS.index("parse_tc_qdisc_show"), EXTRA_TC), (IDS.index("parse_iptables_save"), EXTRA_IPT),
     (IDS.index("parse_int_file"), "262144\n")]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.data())
def test_damaged_real_input(seed: Any, data: Any) -> None:
    index, text = seed
    parser, check = TEXT_PARSERS[index][:2]
    run(parser, check, damage(text, data.draw))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["drop", "reject", "accept", "random", "numgen", "inc", "meta", "==", "<", "!=", "in", "&"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["match", "op", "left", "right", "numgen", "mode", "mod", "offset", "meta", "key", "counter",
                         "packets", "bytes", "drop", "reject", "jump", "target", "vmap", "data", "set", "range", "&",
                         "xt", "name", "expr", "family", "table", "chain", "handle", "prio", "policy"]) | st.text(max_size=5),
        children, max_size=4),
    max_leaves=25)
RULESET = json.loads(fixture("nft/nftables_shell_dumps/packetpath__set_lookups.json-nft"))


@SETTINGS
@given(JSON)
def test_nft_any_json(value: Any) -> None:
    for data in (value, {"nftables": value}, {"nftables": [value]}, {"nftables": [{"rule": value}]},
                 {"nftables": [{"rule": {"family": "ip", "table": "t", "chain": "c", "expr": value}}]}):
        run(_rulesets.parse_nft_json, check_nft, data)


@SETTINGS
@given(JSON, st.data())
def test_nft_real_ruleset_with_a_node_replaced(value: Any, data: Any) -> None:
    ruleset = copy.deepcopy(RULESET)
    node, path = ruleset, []
    while isinstance(node, (dict, list)) and node and data.draw(st.integers(0, 4)):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
        path.append(key)
        node = node[key]
    if path:
        parent = ruleset
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    run(_rulesets.parse_nft_json, check_nft, ruleset)


NETEM = (struct.pack("=6I", 1562500, 1000, 1288490189, 0, 0, 156250) + struct.pack("=HHq", 12, 10, 100000000)
         + struct.pack("=HHq", 12, 11, 10000000) + struct.pack("=HHIII", 16, 1, 1, 2, 3)
         + struct.pack("=HHHHIIII", 24, 0x8005, 20, 2, 1, 2, 3, 4) + struct.pack("=HHqqiiqq", 44, 12, 1, 2, 3, 4, 5, 6))


@SETTINGS
@given(st.binary())
def test_netem_any_bytes(raw: bytes) -> None:
    run(_tc_text.decode_netem_options, check_netem, raw)
    run(_tc_text.decode_netem_options, check_netem, NETEM[:24] + raw)


@SETTINGS
@given(st.data())
def test_netem_damaged_payload(data: Any) -> None:
    raw = bytearray(NETEM)
    for _edit in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    run(_tc_text.decode_netem_options, check_netem, bytes(raw[:data.draw(st.integers(0, len(raw)))]))


def test_netem_seed_payload_is_valid() -> None:
    options: Dict[str, Any] = _tc_text.decode_netem_options(NETEM)
    assert (options["delay_ms"], options["jitter_ms"], options["loss"], options["loss_model"]) == (100.0, 10.0, 30.0, "gemodel")
