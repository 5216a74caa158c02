# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_procfs parsers against cases/procfs.yml and the expectations prometheus/procfs, insights-core and jc state."""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Tuple

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import procfs as _procfs
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.netstat_s_phrases import NETSTAT_S_PHRASES
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import assert_subset, fixture, read

HERE = os.path.dirname(os.path.abspath(__file__))


CASES = yaml.safe_load(read(os.path.join(HERE, "cases", "procfs.yml")))["cases"]


def load_json(rel: str) -> Any:
    return json.loads(fixture(rel))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: Dict[str, Any]) -> None:
    parser = getattr(_procfs, case["parse"])
    data: Any = fixture(case["fixture"]) if "fixture" in case else case.get("text")
    if "bytes" in case:
        data = bytes(case["bytes"])
    source = case.get("fixture", "test")
    if "error" in case:
        with pytest.raises(ParseError) as info:
            parser(data, source=source)
        assert case["error"] in str(info.value)
        assert info.value.source == source
    else:
        assert_subset(parser(data, source=source), case["expect"])


# ---- prometheus/procfs: every value its Go tests assert, for the files these parsers cover ----

PROMETHEUS = load_json("procfs/expected_procfs_unit_tests.json")
# procfs' names for /proc/net/dev columns -> ours
NET_DEV_NAMES = {"rx_errs": "rx_errors", "rx_drop": "rx_dropped", "tx_errs": "tx_errors", "tx_drop": "tx_dropped"}
PROMETHEUS_NOT_COVERED = {"prometheus_procfs/proc/net/sockstat", "prometheus_procfs/proc/net/sockstat6",
                          "prometheus_procfs/proc/net/udp", "prometheus_procfs/proc/net/udp6",
                          "prometheus_procfs/proc/net/udp_broken"}


def snmp6_key(name: str) -> Tuple[str, str]:
    section = next((p for p in ("UdpLite6", "Icmp6", "Udp6", "Ip6") if name.startswith(p)), "Other")
    return section, name if section == "Other" else name[len(section):]


def prometheus_actual(path: str, key: str) -> Any:
    """Our value for one of procfs' expectation keys."""
    text, source = fixture("procfs/" + path), "procfs/" + path
    if path.endswith("/net/dev"):
        parsed = _procfs.parse_net_dev(text, source)
        if key == "_interface_count":
            return len(parsed)
        iface, field = key.split(".")
        return parsed[iface][NET_DEV_NAMES.get(field, field)]
    if path.endswith(("/net/snmp", "/net/netstat")):
        section, name = key.split(".")
        return _procfs.parse_snmp(text, source)[section][name]
    if path.endswith("/net/snmp6"):
        section, name = key.split(".")
        return _procfs.parse_snmp6(text, source)[section][name]
    if "/dev_snmp6/" in path:
        section, name = snmp6_key(key)
        return _procfs.parse_snmp6(text, source)[section][name]
    if path.endswith("softnet_stat"):
        row, field = key.split(".")
        return _procfs.parse_softnet_stat(text, source)[int(row[3:])]["columns" if field == "width" else field]
    if path.endswith("nf_conntrack"):
        cpu, field = key.split(".")
        row = _procfs.parse_conntrack_stat(text, source)["per_cpu"][int(cpu[3:])]
        if field not in row and "_old_format" in path:
            return 0  # a Go struct field left at zero: the 16-column header has no search_restart, we have no key
        return row[field]
    raise AssertionError("no parser for " + path)


PROMETHEUS_VALUES = [(path, key, value) for path, entry in sorted(PROMETHEUS.items()) if path not in PROMETHEUS_NOT_COVERED
                     for key, value in sorted(entry.items()) if not key.startswith("_") or key == "_interface_count"]


def test_prometheus_coverage() -> None:
    assert set(PROMETHEUS) - PROMETHEUS_NOT_COVERED - {v[0] for v in PROMETHEUS_VALUES} == \
        {"prometheus_procfs/proc/net/softnet_stat.broken"}  # the _expect_error case, tested below
    assert len(PROMETHEUS_VALUES) == 226  # of the 259 stated; the rest are udp/sockstat


@pytest.mark.parametrize("path,key,value", PROMETHEUS_VALUES, ids=["%s:%s" % v[:2] for v in PROMETHEUS_VALUES])
def test_prometheus_expectation(path: str, key: str, value: Any) -> None:
    assert prometheus_actual(path, key) == value


def test_prometheus_expected_errors() -> None:
    broken = [p for p, e in PROMETHEUS.items() if e.get("_expect_error") and p not in PROMETHEUS_NOT_COVERED]
    assert broken == ["prometheus_procfs/proc/net/softnet_stat.broken"]
    with pytest.raises(ParseError):
        _procfs.parse_softnet_stat(fixture("procfs/" + broken[0]))


# ---- insights-core ----

INSIGHTS = load_json("procfs/expected_insights_core.json")
SOFTNET_COLUMN = {"packet_drops": (1, "dropped"), "time_squeeze": (2, "time_squeeze"), "cpu_collision": (8, "cpu_collision"),
                  "received_rps": (9, "received_rps"), "flow_limit_count": (10, "flow_limit_count"),
                  "softnet_backlog_len": (11, "backlog_len")}


@pytest.mark.parametrize("path", sorted(INSIGHTS))
def test_insights_core_expectation(path: str) -> None:
    expected = INSIGHTS[path]
    text = fixture("procfs/" + path)
    if "_expect_error" in expected:
        with pytest.raises(ParseError, match="header has"):
            _procfs.parse_snmp(text)
        return
    checked = 0
    if "softnet_stat" in path:
        rows = _procfs.parse_softnet_stat(text)
        for key, value in expected.items():
            if key == "cpu_instances":
                assert len(rows) == value
            elif key == "is_packet_drops":
                assert any(r["dropped"] for r in rows) == value
            elif key in SOFTNET_COLUMN:
                column, name = SOFTNET_COLUMN[key]
                # insights-core says None where the row has no such column; we say 0 and give the width
                assert [r[name] if r["columns"] > column else None for r in rows] == value
            else:
                continue
            checked += 1
    elif path.endswith("PROC_SNMP6"):
        parsed = _procfs.parse_snmp6(text)
        for key, value in expected.items():
            if not key.startswith("_"):
                section, name = snmp6_key(key)
                assert parsed[section][name] == value
                checked += 1
    else:
        parsed = _procfs.parse_snmp(text)
        flat: Dict[str, int] = {}
        for counters in parsed.values():
            flat.update(counters)
        for key, value in expected.items():
            if key == "len(data)":
                assert sum(len(c) for c in parsed.values()) == value
            elif "." in key:
                section, name = key.split(".")
                assert parsed[section][name] == value
            elif not key.startswith("_"):
                assert flat[key] == value
            else:
                continue
            checked += 1
    assert checked == len([k for k in expected if not k.startswith("_")])


# ---- jc ----

def test_jc_net_dev() -> None:
    expected = load_json("procfs/jc/_expected_jc_output/net_dev.json")
    parsed = _procfs.parse_net_dev(fixture("procfs/jc/proc/net/dev"))
    assert list(parsed) == [e["interface"] for e in expected]
    for entry in expected:
        ours = dict(("%sx_%s" % (k[0], k[2:]), v) for k, v in entry.items() if k != "interface")
        assert parsed[entry["interface"]] == dict((NET_DEV_NAMES.get(k, k), v) for k, v in ours.items())


def test_jc_net_netstat() -> None:
    expected = load_json("procfs/jc/_expected_jc_output/net_netstat.json")
    parsed = _procfs.parse_snmp(fixture("procfs/jc/proc/net/netstat"), "/proc/net/netstat")
    assert list(parsed) == [e["type"] for e in expected]
    for entry in expected:
        assert parsed[entry["type"]] == dict((k, v) for k, v in entry.items() if k != "type")


# ---- conntrack totals, int files ----

def test_conntrack_total_is_sum_except_entries() -> None:
    parsed = _procfs.parse_conntrack_stat(fixture("procfs/prometheus_procfs_inline/case_new_format/proc/net/stat/nf_conntrack"))
    for name, total in parsed["total"].items():
        per_cpu = [cpu[name] for cpu in parsed["per_cpu"]]
        assert total == (per_cpu[0] if name == "entries" else sum(per_cpu))


@pytest.mark.parametrize("text,value", [("0\n", 0), ("65536", 65536), (b"42\n", 42)])
def test_parse_int_file(text: Any, value: int) -> None:
    assert _procfs.parse_int_file(text, "/proc/sys/net/netfilter/nf_conntrack_count") == value


@pytest.mark.parametrize("text", ["", "\n", "abc", "1.5", "0x10", "+-1", "1_000"])
def test_parse_int_file_rejects(text: str) -> None:
    with pytest.raises(ParseError, match="nf_conntrack_max"):
        _procfs.parse_int_file(text, "/proc/sys/net/netfilter/nf_conntrack_max")


# ---- netstat -s phrases (net-tools statistics.c) ----

def test_netstat_s_phrases_cover_net_tools_tables() -> None:
    tables = load_json("nstat/net_tools/netstat_s_phrase_map.json")["tables"]
    ours = dict((counter, phrase) for section in NETSTAT_S_PHRASES.values() for phrase, counter in section.items())
    sctp = len(tables["Sctptab"])
    assert len(ours) == sum(len(t) for t in tables.values()) - sctp  # SCTP is not covered
    assert NETSTAT_S_PHRASES["TcpExt"]["%llu SYNs to LISTEN sockets dropped"] == "TcpExt.ListenDrops"
    assert NETSTAT_S_PHRASES["Ip"]["%llu outgoing packets dropped"] == "Ip.OutDiscards"
    assert NETSTAT_S_PHRASES["Ip"]["%llu incoming packets discarded"] == "Ip.InDiscards"
    assert NETSTAT_S_PHRASES["Icmp6 input histogram"]["destination unreachable: %llu"] == "Icmp6.InDestUnreachs"


def test_netstat_s_phrases_name_real_counters() -> None:
    snmp = _procfs.parse_snmp(fixture("procfs/prometheus_procfs/proc/26231/net/snmp"))
    snmp6 = _procfs.parse_snmp6(fixture("procfs/prometheus_procfs/proc/26231/net/snmp6"))
    for title, phrases in NETSTAT_S_PHRASES.items():
        for counter in phrases.values():
            section, name = counter.split(".")
            known = snmp.get(section) or snmp6.get(section)
            if known is not None and title != "TcpExt":
                assert name in known, counter


def test_netstat_s_phrases_read_insights_sample() -> None:
    """Each line of a real `netstat -s` that a phrase matches has the value insights-core expects for it."""
    expected = load_json("nstat/insights_core_netstat_s/expected.json")["NETSTAT_S.txt"]
    text = fixture("nstat/insights_core_netstat_s/NETSTAT_S.txt")
    matched = {}
    section = ""
    for line in text.splitlines():
        if line and not line[0].isspace():
            section = line.rstrip(":")
            continue
        for phrase, counter in NETSTAT_S_PHRASES.get(section, {}).items():
            pattern = "^" + re.escape(phrase).replace("%llu", "([0-9]+)").replace("%s", "(\\S+)") + "\\.?$"
            m = re.match(pattern, line.strip())
            if m:
                key = re.sub("[^a-z0-9]+", "_", phrase.replace("%llu", "").lower()).strip("_")
                assert expected[section.lower()][key] == m.group(1), (section, phrase)
                matched[counter] = int(m.group(1))
    assert matched["Ip.OutDiscards"] == 456
    assert matched["Ip.InReceives"] == 3405107
    assert matched["TcpExt.DelayedACKLost"] == 9
    assert len(matched) >= 30
