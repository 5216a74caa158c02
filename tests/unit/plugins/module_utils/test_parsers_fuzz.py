# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests: on any input every parser returns its declared type or raises ParseError, nothing else.

Inputs are arbitrary text/bytes/JSON and real fixtures with random damage (cut, spliced, lines
dropped or repeated, huge numbers, JSON nodes replaced), which reach much deeper into the parsers than noise.
Every result must also pass through the JSON encoder a module's result goes through (Ansible's), and every int in
it must fit in 64 bits (_parse_errors.INT_MIN..INT_MAX: the rule of the parsers, so no result breaks JSON or the
controller). The parsers: _procfs (each), _tc_text (qdisc text, netem attributes), _netlink's decoders (links,
qdiscs, qdisc options, dump datagrams) and _rulesets (iptables-save, nft JSON).

Bounded and reproducible: every test is derandomized (the same examples on every run, so a pass is not luck and
a failure is not noise), with a fixed max_examples and a per-example deadline; the whole file takes about 10 s
of CPU.
"""
from __future__ import annotations

import copy
import datetime
import json
import struct
from typing import Any, Callable, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import rtnetlink as _netlink

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import procfs as _procfs

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netfilter as _rulesets
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import nftables as _nftables

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import tc as _tc_text
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netem as _netem
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import INT_MAX, INT_MIN, ParseError
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import fixture

# deadline: one example may take 2 s (a slow shared CI core), far above the milliseconds they take
DEADLINE = datetime.timedelta(seconds=2)
SETTINGS = settings(max_examples=150, deadline=DEADLINE, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def ansible_json(result: Any, high: int = INT_MAX) -> str:
    """``result`` encoded as a module's result is (the module-to-controller encoder of ansible-core >= 2.19, the
    legacy jsonify before), after checking that every int in it fits in 64 bits (up to ``high``)."""
    check_ints(result, high)
    try:
        from ansible.module_utils.common import json as common_json
        encoder = common_json.get_module_encoder("legacy", common_json.Direction.MODULE_TO_CONTROLLER)
        return json.dumps({"result": result}, cls=encoder)
    except (ImportError, AttributeError):
        from ansible.module_utils.common.text.converters import jsonify
        return jsonify({"result": result})


def check_ints(x: Any, high: int = INT_MAX) -> None:
    """Every int in ``x`` is in INT_MIN..``high``."""
    if isinstance(x, dict):
        for k, v in x.items():
            assert isinstance(k, str), k
            check_ints(v, high)
    elif isinstance(x, (list, tuple)):
        for v in x:
            check_ints(v, high)
    elif isinstance(x, int) and not isinstance(x, bool):
        assert INT_MIN <= x <= high, "an int of %d bits" % x.bit_length()


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_counters(x: Any) -> bool:
    return isinstance(x, dict) and all(isinstance(k, str) and is_int(v) for k, v in x.items())


def check_sections(result: Any) -> None:
    assert isinstance(result, dict) and all(isinstance(k, str) and is_counters(v) for k, v in result.items())
    ansible_json(result)


def check_softnet(result: Any) -> None:
    assert isinstance(result, list) and all(is_counters(row) for row in result)
    ansible_json(result)


def check_conntrack(result: Any) -> None:
    assert set(result) == {"per_cpu", "total"} and is_counters(result["total"])
    assert isinstance(result["per_cpu"], list) and all(is_counters(cpu) for cpu in result["per_cpu"])
    ansible_json(result)


def check_int(result: Any) -> None:
    assert is_int(result)
    ansible_json(result)


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
    ansible_json(result)


def check_nft(result: Any) -> None:
    assert result["backend"] == "nft-native"
    for key in ("tables", "chains", "rules", "named_counters"):
        assert isinstance(result[key], list)
    for rule in result["rules"]:
        check_rule(rule, "verdict")
        assert isinstance(rule["xt"], bool)
    ansible_json(result)


def check_tc(result: Any) -> None:
    assert isinstance(result, list)
    for entry in result:
        assert isinstance(entry["kind"], str) and isinstance(entry["handle"], str) and isinstance(entry["root"], bool)
        assert isinstance(entry["options"], dict)
        if entry["kind"] == "netem":
            assert set(entry["options"]) == set(_netem.NETEM_KEYS)
        assert entry["stats"] is None or is_counters(entry["stats"])
    ansible_json(result)


def check_netem(result: Any) -> None:
    assert set(result) == set(_netem.NETEM_KEYS)
    ansible_json(result)


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
    (_nftables.parse_nft_json, check_nft, ["nft/nftables_shell_dumps/packetpath__set_lookups.json-nft"]),
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
        edit = draw(st.sampled_from(["cut", "insert", "replace", "line", "truncate", "number"]))
        noise = draw(st.text(alphabet=st.sampled_from(list(" \t\n-!:[]{}\"'%.0123456789abcxyzABCDEF,")), max_size=12))
        if edit == "number":  # a huge number where a counter was: 64 bits +/- a digit, or past str()'s 4300 digits
            noise = draw(st.sampled_from(["f" * 16, "1" + "0" * 16, "18446744073709551616", "-9223372036854775809",
                                          "f" * 4400, "9" * 4400]))
            edit = "replace"
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


@settings(max_examples=600, deadline=DEADLINE, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
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
        run(_nftables.parse_nft_json, check_nft, data)


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
    run(_nftables.parse_nft_json, check_nft, ruleset)


NETEM = (struct.pack("=6I", 1562500, 1000, 1288490189, 0, 0, 156250) + struct.pack("=HHq", 12, 10, 100000000)
         + struct.pack("=HHq", 12, 11, 10000000) + struct.pack("=HHIII", 16, 1, 1, 2, 3)
         + struct.pack("=HHHHIIII", 24, 0x8005, 20, 2, 1, 2, 3, 4) + struct.pack("=HHqqiiqq", 44, 12, 1, 2, 3, 4, 5, 6))


@SETTINGS
@given(st.binary())
def test_netem_any_bytes(raw: bytes) -> None:
    run(_netem.decode_netem_options, check_netem, raw)
    run(_netem.decode_netem_options, check_netem, NETEM[:24] + raw)


@SETTINGS
@given(st.data())
def test_netem_damaged_payload(data: Any) -> None:
    raw = bytearray(NETEM)
    for _edit in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    run(_netem.decode_netem_options, check_netem, bytes(raw[:data.draw(st.integers(0, len(raw)))]))


def test_netem_seed_payload_is_valid() -> None:
    options: Dict[str, Any] = _netem.decode_netem_options(NETEM)
    assert (options["delay_ms"], options["jitter_ms"], options["loss"], options["loss_model"]) == (100.0, 10.0, 30.0, "gemodel")


# ---- _netlink's decoders: a kernel message's framing (nlmsghdr + ifinfomsg/tcmsg) around any attributes ----

ATTR = st.tuples(st.sampled_from([1, 2, 3, 4, 6, 7, 16, 18, 23, 0x8002, 0x3FFF]) | st.integers(0, 0xFFFF),
                 st.binary(max_size=60))
QDISC_KINDS = ["netem", "tbf", "pfifo", "bfifo", "pfifo_head_drop", "htb", "fq_codel", ""]


def nl_attribute(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def nl_message(msg_type: int, header: bytes, attrs: bytes) -> bytes:
    return struct.pack("=IHHII", _netlink.NLMSG_HDRLEN + len(header) + len(attrs), msg_type, 2, 1, 0) + header + attrs


def check_link(result: Any) -> None:
    name, row = result
    assert isinstance(name, str) and isinstance(row, dict) and is_counters(row["stats"])
    assert set(row["stats"]) <= set(_netlink.LINK_STATS)
    ansible_json(row)


def check_qdisc(row: Any) -> None:
    assert isinstance(row["kind"], str) and isinstance(row["handle"], str) and isinstance(row["options"], dict)
    assert is_counters(row["stats"])
    ansible_json(row, high=INT_MAX * 8)  # options.rate_bps: the kernel's u64 bytes/s, times 8


@SETTINGS
@given(st.lists(ATTR, max_size=8), st.binary(max_size=40), st.integers(-2 ** 31, 2 ** 31 - 1))
def test_netlink_link_any_attributes(attrs: Any, tail: bytes, ifindex: int) -> None:
    header = struct.pack("=BxHiII", 0, 1, ifindex, 0, 0)
    body = b"".join(nl_attribute(k, p) for k, p in attrs)
    run(_netlink.decode_link, check_link, nl_message(16, header, body))
    run(_netlink.decode_link, check_link, nl_message(16, header, body + tail))  # a torn last attribute


@SETTINGS
@given(st.binary(max_size=80))
def test_netlink_link_any_bytes(raw: bytes) -> None:
    run(_netlink.decode_link, check_link, raw)


@SETTINGS
@given(st.sampled_from(QDISC_KINDS) | st.text(max_size=8), st.lists(ATTR, max_size=6), st.binary(max_size=120),
       st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1))
def test_netlink_qdisc_any_attributes(kind: str, attrs: Any, options: bytes, handle: int, parent: int) -> None:
    header = struct.pack("=B3xiIII", 0, 2, handle, parent, 1)
    body = nl_attribute(_tc_text.TCA_KIND, kind.encode() + b"\0") + nl_attribute(_tc_text.TCA_OPTIONS, options)
    body += b"".join(nl_attribute(k, p) for k, p in attrs)
    run(lambda buf: _tc_text.decode_qdisc(buf, {2: "eth0"}), check_qdisc, nl_message(36, header, body))
    run(lambda buf: _tc_text.decode_qdisc(buf, {}), check_qdisc, bytes(body))  # no framing at all


@SETTINGS
@given(st.sampled_from(QDISC_KINDS), st.binary(max_size=200), st.lists(ATTR, max_size=6))
def test_netlink_qdisc_options(kind: str, raw: bytes, attrs: Any) -> None:
    def check(options: Any) -> None:
        assert isinstance(options, dict)
        ansible_json(options, high=INT_MAX * 8)  # rate_bps: the kernel's u64 bytes/s, times 8
    run(lambda r: _tc_text.decode_options(kind, r), check, raw)
    run(lambda r: _tc_text.decode_options(kind, r), check, b"".join(nl_attribute(k, p) for k, p in attrs))


@SETTINGS
@given(st.binary(max_size=200), st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=5))
def test_netlink_split_messages(raw: bytes, messages: Any) -> None:
    """A datagram is split into whole messages, or OSError (the errno the kernel answered) is raised."""
    for data in (raw, b"".join(nl_message(t, b"", p) for t, p in messages)):
        try:
            out, done = _netlink.split_messages(data)
        except OSError as exc:
            assert exc.errno and exc.errno > 0
            continue
        assert isinstance(done, bool) and all(isinstance(m, bytes) and len(m) >= _netlink.NLMSG_HDRLEN for m in out)
        assert sum(len(m) for m in out) <= len(data)


# ---- the exact inputs of issue #14 item 5 (procfs part): refused with ParseError, not returned ----

@pytest.mark.parametrize("parser, text", [
    (_procfs.parse_softnet_stat, " ".join(["f" * 4000] + ["0"] * 12) + "\n"),
    (_procfs.parse_softnet_stat, " ".join(["1" + "0" * 16] + ["0"] * 12) + "\n"),
    (_procfs.parse_conntrack_stat, "entries searched found\n%s 00000000 00000000\n" % ("f" * 4000)),
    (_procfs.parse_conntrack_stat, "entries searched found\n%s 00000000 00000000\n" % ("f" * 17)),
    (_procfs.parse_snmp, "Tcp: MaxConn InSegs\nTcp: -1 %s\n" % ("9" * 4400)),
    (_procfs.parse_snmp6, "Ip6InReceives %s\n" % (2 ** 64)),
    (_procfs.parse_net_dev, "eth0: " + " ".join(["1" * 21] + ["0"] * 15) + "\n"),
    (lambda text: _procfs.parse_int_file(text, "nf_conntrack_count"), "9" * 5000 + "\n"),
], ids=["softnet-4000-hex", "softnet-65-bits", "conntrack-4000-hex", "conntrack-65-bits", "snmp-4400-digits",
        "snmp6-2**64", "net-dev-21-digits", "int-file-5000-digits"])
def test_numbers_past_64_bits_are_a_parse_error(parser: Callable[[Any], Any], text: str) -> None:
    with pytest.raises(ParseError) as info:
        parser(text)
    assert "does not fit in 64 bits" in str(info.value)


# ---- _rulesets: exact inputs of issue #14 item 5 (counters past 64 bits, and past int()'s 4300-digit limit) ----
HUGE = "9" * 4400
RULESET_COUNTER_CASES = [
    ("iptables-chain-counter-4400-digits", "*filter\n:INPUT ACCEPT [%s:0]\nCOMMIT\n" % HUGE),
    ("iptables-rule-counter-4400-digits", "*filter\n:INPUT ACCEPT [0:0]\n[%s:0] -A INPUT -j DROP\nCOMMIT\n" % HUGE),
    ("iptables-chain-counter-2**64", "*filter\n:INPUT ACCEPT [18446744073709551616:0]\nCOMMIT\n"),
    ("nft-counter-int-5000-digits", {"nftables": [{"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 1,
                                                            "expr": [{"counter": {"packets": 10 ** 5000, "bytes": 1}}]}}]}),
]


@pytest.mark.parametrize("data", [c[1] for c in RULESET_COUNTER_CASES], ids=[c[0] for c in RULESET_COUNTER_CASES])
def test_ruleset_counters_past_64_bits(data: Any) -> None:
    if isinstance(data, dict):
        run(_nftables.parse_nft_json, check_nft, data)
    else:
        run(_rulesets.parse_iptables_save, check_iptables, data)
