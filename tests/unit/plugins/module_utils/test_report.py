# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_report: a host's diagnosis and its reports (JSON, summary table, Markdown, HTML, JUnit) from analyzer cases."""
from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any, Dict, List

import pytest

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import diagnosis as _diagnosis
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report
from test_analyze import CASES, build  # the analyzer's table of cases (same directory)

PROBES = {"results": [
    {"item": {"host": "172.17.0.2", "port": 80, "mode": "syn", "target": "container:nginx"}, "changed": False,
     "sent": 20, "answered": 13, "lost": 7, "loss_percent": 35.0, "address": "172.17.0.2",
     "rtt_ms": {"min": 0.1, "avg": 0.2, "max": 0.5, "p50": 0.2, "p95": 0.4}},
    {"item": {"host": "192.0.2.9", "port": 443}, "failed": False, "msg": "cannot resolve 192.0.2.9"},
    {"item": {"host": "10.0.0.1", "port": 22, "target": "container:gone"}, "sent": 3, "answered": 3, "lost": 0,
     "loss_percent": 0.0, "rtt_ms": {}},
]}


def diagnosis(case_id: str, host: str = "web1", probes: Any = None) -> Dict[str, Any]:
    case = next(c for c in CASES if c["id"] == case_id)
    before, after, interval = build(case)
    return _diagnosis.host_diagnosis(before, after, interval, case.get("thresholds"), host=host, probes=probes,
                                     generated_at="2026-11-27T01:00:00+00:00")


@pytest.fixture
def seed() -> Dict[str, Any]:
    return diagnosis("random-drop-input-and-output-the-seeds-case", probes=PROBES)


@pytest.fixture
def fleet(seed: Dict[str, Any]) -> List[Dict[str, Any]]:
    clean = diagnosis("clean-host-and-container-busy-but-not-dropping", host="db1")
    squeezed = diagnosis("softnet-backlog-drops-and-squeezes", host="lb1")
    squeezed["targets"]["host"]["layers"]["netfilter"] = {"available": False, "reason": "iptables not installed"}
    squeezed["targets"]["host"]["worst_by_layer"]["netfilter"] = {"severity": "n/a", "id": None, "subject": None, "count": 0,
                                                                  "read": "unread"}
    squeezed["unread"] = _diagnosis.unread_rows(squeezed)
    return [seed, clean, squeezed]


def test_host_diagnosis(seed: Dict[str, Any]) -> None:
    assert list(seed["targets"]) == ["host", "container:nginx"]
    t = seed["targets"]["container:nginx"]
    assert t["worst"] == "critical" and t["counts"] == {"info": 0, "warning": 0, "critical": 2}
    assert t["worst_by_layer"]["netfilter"] == {"severity": "critical", "id": "netfilter.random_drop",
                                                "subject": "rule ipv4 filter INPUT #1 (nft)", "count": 2, "findings": 2,
                                                "read": "read"}
    assert t["worst_by_layer"]["nic"] == {"severity": None, "id": None, "subject": None, "count": 0, "read": "read"}
    assert seed["unread"] == []
    assert t["interval"] == 5.0 and t["target"]["label"] == "container:nginx"
    assert [p["name"] for p in t["probes"]] == ["172.17.0.2:80 syn"]
    host_probes = seed["targets"]["host"]["probes"]
    assert host_probes[0]["failed"] and host_probes[0]["msg"] == "cannot resolve 192.0.2.9"
    assert [p["target"] for p in seed["unmatched_probes"]] == ["container:gone"]
    assert seed["worst"] == "critical" and len(seed["findings"]) == 2
    json.dumps(seed)  # plain data all the way down


@pytest.mark.parametrize("probes, expected", [
    (None, []),
    ([{"host": "a", "port": 1, "mode": "connect", "sent": 2, "answered": 1, "loss_percent": 50.0}],
     [{"name": "a:1 connect", "target": "host", "loss_percent": 50.0, "failed": False}]),
    ({"results": [{"item": {"host": "a", "port": 1, "name": "web", "target": "container:x"}, "skipped": True}]}, []),
    ({"results": [{"item": {"host": "a", "port": 1, "mode": "syn"}, "failed": True, "msg": "needs CAP_NET_RAW"}]},
     [{"name": "a:1 syn", "failed": True, "msg": "needs CAP_NET_RAW"}]),
])
def test_normalize_probes(probes: Any, expected: List[Dict[str, Any]]) -> None:
    rows = _diagnosis.normalize_probes(probes)
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert dict((k, row[k]) for k in want) == want


def test_summary_table(fleet: List[Dict[str, Any]]) -> None:
    lines = _report.summary_table(fleet).splitlines()
    assert lines[0].split() == ["HOST", "TARGET", "NIC", "SOFTNET", "QDISC", "IP", "TCP", "UDP", "SOCKET", "NETFILTER",
                                "CONNTRACK", "DROPS", "PROBE", "LOSS"]
    rows = dict((tuple(l.split()[:2]), l) for l in lines[1:6])
    assert set(rows) == {("db1", "host"), ("db1", "container:nginx"), ("lb1", "host"), ("web1", "host"),
                         ("web1", "container:nginx")}
    assert "crit random_drop x2" in rows[("web1", "container:nginx")]
    assert rows[("web1", "container:nginx")].endswith("35% 172.17.0.2:80 syn")
    assert "failed (192.0.2.9:443 connect)" in rows[("web1", "host")]
    assert "warn dropped" in rows[("lb1", "host")] and " n/a " in rows[("lb1", "host")]
    assert rows[("db1", "host")].split()[2:12] == ["."] * 10
    assert lines[-2].startswith("5 target(s) on 3 host(s): 2 critical, 2 warning, 0 info")
    assert lines[-1] == "n/a lb1 host netfilter: iptables not installed"


def test_target_files_are_the_documented_json(seed: Dict[str, Any]) -> None:
    files = _report.target_files([seed])
    assert [f["path"] for f in files] == ["web1/host.json", "web1/container_nginx.json"]
    doc = json.loads(files[1]["content"])
    assert doc["schema"] == "netdiag.packetloss/target-report/v1"
    assert set(doc) == {"schema", "generated_at", "host", "label", "run", "target", "snapshots", "interval", "layers",
                        "warnings", "worst", "worst_by_layer", "counts", "findings", "probes"}
    assert doc["run"] is None  # the filter knows no run; the report task's files name theirs
    assert doc["findings"][0]["evidence"]["rule"]["probability"] == 0.3


@pytest.mark.parametrize("text, name", [("container:nginx", "container_nginx"), ("netns:/proc/12/ns/net", "netns_proc_12_ns_net"),
                                        ("../../etc", "etc"), ("", "_"), ("web-1.example.org", "web-1.example.org")])
def test_safe_name(text: str, name: str) -> None:
    assert _report.safe_name(text) == name


def test_fleet_files(fleet: List[Dict[str, Any]]) -> None:
    files = _report.fleet_files(fleet, report_dir="/tmp/r")
    assert [f["path"] for f in files] == list(_report.FLEET_FILES)
    summary = json.loads(files[0]["content"])
    assert summary["hosts"] == 3 and summary["targets"] == 5 and summary["report_dir"] == "/tmp/r"
    assert summary["worst"] == "critical"


class _Tags(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: List[str] = []
        self.seen: List[str] = []
        self.ids: List[str] = []
        self.hrefs: List[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.seen.append(tag)
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])
        if a.get("href"):
            self.hrefs.append(a["href"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, "unbalanced </%s> (open: %s)" % (tag, self.stack[-3:])
        self.stack.pop()


def page_data(page: str) -> Dict[str, Any]:
    """The data the page's script renders from (rows after the first ones, every target's findings)."""
    start = page.index('<script type="application/json" id="data">') + len('<script type="application/json" id="data">')
    return json.loads(page[start:page.index("</script>", start)])


def page_rows(page: str) -> List[Dict[str, str]]:
    """Every heat map row, in order: those in the HTML, then those the script adds ({host, sev, t})."""
    grid = page[page.index("<tbody>"):page.index("</tbody>")]
    rows = [dict((k, r.split('data-%s="' % k)[1].split('"')[0]) for k in ("host", "sev", "t")) for r in grid.split("<tr ")[1:]]
    return rows + [{"host": r[0], "sev": r[2], "t": str(r[13])} for r in page_data(page)["rows"]]


def test_html_is_self_contained_balanced_and_links_the_heat_map(fleet: List[Dict[str, Any]]) -> None:
    page = _report.render_html(fleet)
    parser = _Tags()
    parser.feed(page)
    assert parser.stack == []
    # one file that works offline: inline CSS and JS only, nothing fetched
    assert "link" not in parser.seen and "img" not in parser.seen and " src=" not in page and "http" not in page
    assert parser.seen.count("script") == 2 and parser.seen.count("style") == 1  # the data, and the script
    assert page.count("<table id=\"grid\">") == 1
    assert "class=\"c critical\"" in page and "class=\"c na\"" in page
    data = page_data(page)
    anchors = [h[1:] for h in parser.hrefs if h.startswith("#")]
    findings = [f for d in data["details"] for f in d["findings"]]
    assert anchors and set(anchors) <= set(f["anchor"] for f in findings)  # every heat map cell links to a finding
    assert "rule ipv4 filter INPUT #1 (nft)" in page
    evidence = next(f for f in findings if f["id"] == "netfilter.random_drop")
    assert evidence["tables"] == [["counters", [["packets", "6", "14", "8", "1.6"]]]]
    # worst first, grouped by host: web1's critical target first; db1 is clean: collapsed into a count
    rows = page_rows(page)
    assert (rows[0]["host"], rows[0]["sev"]) == ("web1", "critical")
    assert "db1" not in [r["host"] for r in rows]
    assert "1 clean host(s)" in page and ">db1<" not in page.split("id=\"clean-hosts\"")[0]
    # each row names its target's findings (data-t), a clean-count row none
    assert all(r["t"] == "-1" or 0 <= int(r["t"]) < len(data["details"]) for r in rows)


def test_html_and_markdown_escape_what_comes_from_hosts(seed: Dict[str, Any]) -> None:
    evil = copy.deepcopy(seed)
    f = evil["targets"]["container:nginx"]["findings"][0]
    f["summary"] = "<script>alert(1)</script> | x"
    f["evidence"]["rule"]["spec"] = "-m comment --comment \"</td><img src=x>\""
    page = _report.render_html([evil])
    assert page.count("<script>") == 1 and "<script>alert" not in page and "<img" not in page
    assert "\\u003cscript\\u003ealert(1)" in page  # in the page's data, rendered by the script as text
    assert "<script>alert(1)</script> | x" in [f["summary"] for d in page_data(page)["details"] for f in d["findings"]]
    md = _report.markdown([evil])
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt; \\| x" in md
    # evidence goes into code spans, where Markdown renders no HTML
    img_lines = [l for l in md.splitlines() if "<img" in l]
    assert img_lines and all(l.startswith("- rule: `") and l.endswith("`") for l in img_lines)


def test_markdown(fleet: List[Dict[str, Any]]) -> None:
    md = _report.markdown(fleet)
    assert md.startswith("# Packet-loss diagnosis\n")
    assert "| web1 | container:nginx | . | . | . | . | . | . | . | crit random_drop x2 | . | . | 35% 172.17.0.2:80 syn |" in md
    assert "#### CRITICAL `netfilter.random_drop` - rule ipv4 filter INPUT #1 (nft)" in md
    assert "| packets | 6 | 14 | 8 | 1.6 |" in md
    assert "- layer netfilter not read: iptables not installed" in md
    assert "| web1 | 172.17.0.2:80 syn | container:nginx | 20 | 13 | 35 | 0.1/0.2/0.5/0.2/0.4 |" in md


@pytest.mark.parametrize("fail_severity, max_loss, failures", [
    ("warning", 0.0, 4), ("critical", 0.0, 3), ("critical", 50.0, 2), ("info", 50.0, 3)])
def test_junit(fleet: List[Dict[str, Any]], fail_severity: str, max_loss: float, failures: int) -> None:
    root = ET.fromstring(_report.junit(fleet, fail_severity, max_loss))
    assert root.tag == "testsuites" and int(root.get("failures")) == failures
    suites = dict((s.get("name"), s) for s in root)
    assert set(suites) == {"web1", "db1", "lb1"}
    assert int(root.get("tests")) == 5 * 10 + 3  # targets x layers, and web1's probes
    nf = suites["web1"].find("testcase[@classname='web1.container:nginx'][@name='netfilter']")
    failure = nf.find("failure")
    assert failure is not None and failure.get("type") == "critical"
    assert "netfilter.random_drop" in failure.get("message") and "probability=0.3" in failure.text
    skipped = suites["lb1"].find("testcase[@classname='lb1.host'][@name='netfilter']/skipped")
    assert skipped is not None and "iptables not installed" in skipped.get("message")
    assert int(root.get("skipped")) == 1
    probe = suites["web1"].find("testcase[@name='172.17.0.2:80 syn']/failure")
    assert (probe is not None) == (max_loss < 35.0)


def test_junit_rejects_bad_severity(seed: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _report.junit([seed], "fatal")


def _unread_fleet() -> Dict[str, Any]:
    """From the fixture snapshots: the host's iptables layer unreadable (issue 14 item 3), the container's netstat
    layer read without net/dev (a source missing: only nic lacks it), and the host's tc layer unreadable in the
    first snapshot only (its counters cannot be compared: partial)."""
    case = next(c for c in CASES if c["id"] == "clean-host-and-container-busy-but-not-dropping")
    before, after, interval = build(case)
    for snap in (before, after):
        snap["host"]["iptables"] = {"available": False, "reason": "iptables-nft-save: not installed"}
        snap["container:nginx"]["netstat"]["unread"] = [{"source": "/proc/1/net/dev", "reason": "no permission"}]
    before["host"]["tc"] = {"available": False, "reason": "netlink: operation not permitted"}
    return _diagnosis.host_diagnosis(before, after, interval, host="web1", generated_at="2026-11-27T01:00:00+00:00")


def test_a_layer_not_read_is_never_shown_clean_anywhere() -> None:
    from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import compliance as _compliance
    d = _unread_fleet()
    assert d["findings"] == []
    host, nginx = d["targets"]["host"], d["targets"]["container:nginx"]
    assert host["worst_by_layer"]["netfilter"]["severity"] == "n/a" and host["worst_by_layer"]["netfilter"]["read"] == "unread"
    assert host["layers"]["qdisc"]["state"] == "partial" and "tc (first snapshot)" in host["layers"]["qdisc"]["reason"]
    assert nginx["layers"]["nic"]["state"] == "partial" and nginx["layers"]["tcp"]["state"] == "read"
    assert [(u["target"], u["layer"], u["state"]) for u in d["unread"]] == [
        ("host", "qdisc", "partial"), ("host", "netfilter", "unread"), ("container:nginx", "nic", "partial")]
    # the console (the diagnose task's msg) and the summary table the role prints
    msg = _report.console_message(d)
    assert "n/a host netfilter: iptables-nft-save: not installed" in msg and "partly read container:nginx nic" in msg
    table = _report.summary_table([d]).splitlines()
    cells = dict((tuple(l.split()[:2]), l.split()[2:12]) for l in table[1:3])
    assert cells[("web1", "host")] == [".", ".", "partial", ".", ".", ".", ".", "n/a", ".", "."]
    assert cells[("web1", "container:nginx")] == ["partial"] + ["."] * 9
    assert "n/a web1 host netfilter: iptables-nft-save: not installed" in table
    # summary.json
    rows = dict((r["target"], r) for r in _report.summary([d])["rows"])
    assert rows["host"]["layers"]["netfilter"]["severity"] == "n/a" and rows["host"]["not_read"] == ["qdisc", "netfilter"]
    assert rows["container:nginx"]["layers"]["nic"] == {"severity": None, "id": None, "subject": None, "count": 0,
                                                        "read": "partial"}
    # Markdown and HTML
    md = _report.markdown([d])
    assert "| web1 | host | . | . | partial | . | . | . | . | n/a | . | . | - |" in md
    assert "**3 layer(s) not read in full: not known to be clean**" in md
    assert "- layer nic read in part: not read: /proc/1/net/dev: no permission" in md
    page = _report.render_html([d])
    assert page.count("<td class=\"c partial\" data-k=\"-1\" title=\"not read: ") == 2
    assert "<td class=\"c na\" data-k=\"-1\" title=\"iptables-nft-save: not installed\">n/a<" in page
    assert "data-sev=\"clean\"" not in page  # neither target is shown clean
    # the diagnose role's JUnit: never a pass
    root = ET.fromstring(_report.junit([d]))
    assert root.get("skipped") == "3" and root.get("failures") == "0"
    assert "n/a - layer not read" in root.find(".//testcase[@classname='web1.host'][@name='netfilter']/skipped").get("message")
    # the compliance gate fails closed, in every file
    v = _compliance.verdict(d)
    assert not v["compliant"] and sorted((c["target"], c["check"]) for c in v["checks"] if c["status"] == "fail") == [
        ("container:nginx", "nic"), ("host", "netfilter"), ("host", "qdisc")]
    files = dict((f["path"], f["content"]) for f in _compliance.files([v], [d]))
    cj = ET.fromstring(files["compliance-junit.xml"])
    assert cj.find(".//testcase[@classname='web1.host'][@name='netfilter']/failure").get("type") == "unread"
    assert cj.find(".//testcase[@classname='web1.container:nginx'][@name='nic']/failure").get("type") == "partial"
    summary = json.loads(files["compliance.json"])
    assert not summary["compliant"] and [u["layer"] for u in summary["results"][0]["not_read"]] == ["qdisc", "netfilter", "nic"]
    assert 'packetloss_layer_not_read{host="web1",target="host",layer="netfilter",state="unread"} 1' in files["packetloss.prom"]
    assert 'packetloss_host_compliant{host="web1"} 0' in files["packetloss.prom"]
    allowed = _compliance.verdict(d, allow_unread=["netfilter", "qdisc", {"layer": "nic", "target": "container:nginx"}])
    assert allowed["compliant"] and allowed["counts"]["skipped"] == 3
