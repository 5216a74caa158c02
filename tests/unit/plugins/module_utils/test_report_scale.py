# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports at fleet scale (issue 13): explained_by linear in targets, a bounded console summary, machine-read JSON
by the C encoder, and report.html usable at that size. Fleets from the real snapshots (cases/analyze_base.yml)."""
from __future__ import annotations

import copy
import json
import os
import sys
from typing import Any, Dict, List

import pytest

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import diagnosis as _diagnosis
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report

from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import html as _report_html
from test_analyze import CASES, build  # the analyzer's table of cases (same directory)
from test_report import page_data, page_rows  # the page's rows and data (same directory)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from report_scale import Fleet  # noqa: E402  pylint: disable=wrong-import-position


def _spec(case_id: str, label: str) -> Dict[str, Any]:
    return copy.deepcopy(next(c for c in CASES if c["id"] == case_id)["targets"][label])


def _host_with_containers(n: int) -> Dict[str, List[Dict[str, Any]]]:
    """A host whose own namespace and n containers all show tcp symptoms, each container with a random-drop rule."""
    drop = _spec("random-drop-input-and-output-the-seeds-case", "container:nginx")
    symptoms = _spec("tcp-symptoms-unexplained", "host")
    container = copy.deepcopy(drop)
    container["after"].update(symptoms["after"])
    targets = {"host": symptoms}
    targets.update(("container:c%03d" % i, container) for i in range(n))
    before, after, interval = build({"id": "fleet", "targets": targets})
    return {"findings": _analyze.analyze_host(before, after, interval, host="web1")}


def _entries(findings: List[Dict[str, Any]]) -> int:
    return sum(len(f["explained_by"]) for f in findings)


def test_explained_by_is_linear_in_the_targets_of_a_host() -> None:
    """Issue 13: every symptom listed every cause of its host (28,000 entries at 800 targets on one host)."""
    small, large = _host_with_containers(20), _host_with_containers(80)
    symptoms = sum(1 for f in large["findings"] if f["id"] in _analyze.SYMPTOMS)
    assert symptoms >= 80 * 3  # three symptoms per container, and the host's
    # 4x the targets: about 4x the entries (quadratic would be 16x)
    assert _entries(large["findings"]) <= 4.5 * _entries(small["findings"]), (_entries(small["findings"]), _entries(large["findings"]))


def test_explained_by_names_its_own_target_and_the_host_then_counts_the_others() -> None:
    findings = _host_with_containers(5)["findings"]
    causes = [f for f in findings if f["id"] == "netfilter.random_drop"]
    assert len(causes) == 10  # two rules per container
    c1 = [f for f in findings if f["target"] == "container:c001" and f["id"] in _analyze.SYMPTOMS]
    assert c1
    for f in c1:
        assert [(x["id"], x["target"]) for x in f["explained_by"]] == [("netfilter.random_drop", "container:c001")] * 2
        assert f["explained_by_others"] == 8
        assert f["summary"].endswith("; explained by netfilter.random_drop on container:c000, "
                                     "netfilter.random_drop on container:c001 and 7 more"), f["summary"]
        assert f["severity"] == "info"  # capped: a critical cause on the host explains it
    host = [f for f in findings if f["target"] == "host" and f["id"] in _analyze.SYMPTOMS]
    assert host and all(len(f["explained_by"]) == 10 and "explained_by_others" not in f for f in host)
    # the host's causes, each once
    assert _analyze.host_causes(findings) == [dict((k, c[k]) for k in ("id", "target", "subject", "severity"))
                                              for c in sorted(causes, key=lambda c: (c["target"], c["subject"]))]


def test_the_diagnosis_names_each_cause_once() -> None:
    case = next(c for c in CASES if c["id"] == "tcp-symptoms-on-the-host-explained-by-the-containers-random-drop")
    before, after, interval = build(case)
    d = _diagnosis.host_diagnosis(before, after, interval, host="web1")
    assert d["causes"] == [{"id": "netfilter.random_drop", "target": "container:nginx",
                            "subject": "rule ipv4 filter INPUT #1 (nft)", "severity": "critical"}]


@pytest.fixture(scope="module")
def fleet() -> List[Dict[str, Any]]:
    return Fleet().build(60, 20)


def test_the_bench_fleet_is_the_issues_mix(fleet: List[Dict[str, Any]]) -> None:
    worst = [t["worst"] for d in fleet for t in d["targets"].values()]
    assert len(worst) == 1200
    assert worst.count("critical") == 60 and worst.count("warning") == 120  # 5 % and 10 %
    assert any(u["state"] == "unread" for d in fleet for u in d["unread"])


@pytest.mark.parametrize("hosts, worst", [(5, 20), (60, 20), (60, 3), (60, 0)])
def test_the_console_summary_is_bounded(fleet: List[Dict[str, Any]], hosts: int, worst: int) -> None:
    """Issue 13: the summary task printed 3.5 MB (23,500 lines) at 20,000 targets."""
    text = _report.console_summary(fleet[:hosts], worst, "/r")
    lines = text.splitlines()
    crit = sum(1 for d in fleet[:hosts] for f in d["findings"] if f["severity"] == "critical")
    assert lines[0].startswith("%d target(s) on %d host(s): %d critical, " % (hosts * 20, hosts, crit))
    assert len(lines) <= 3 * worst + 12, len(lines)
    assert lines[-1].startswith("reports: /r/report.html")
    above = sum(1 for d in fleet[:hosts] for f in d["findings"] if f["severity"] != "info")
    if above > worst:
        assert "... and %d more finding(s) above info (see the reports)" % (above - worst) in lines
    if worst:
        first = lines[lines.index("Findings above info (worst %d of %d):" % (min(worst, above), above)) + 1]
        assert ": critical " in first
        table = lines.index(next(l for l in lines if l.startswith("Worst targets"))) + 1
        assert lines[table].split()[:2] == ["HOST", "TARGET"] and "crit" in lines[table + 1]
    # layers not read are never hidden by the bound: their count is in the totals and they are listed first
    assert "layer(s) not read in full" in lines[0]


def test_the_console_summary_names_hosts_without_a_diagnosis(fleet: List[Dict[str, Any]]) -> None:
    text = _report.console_summary(fleet[:2], 20, None, missing=["db9", "db8"])
    assert "no diagnosis from 2 host(s): db8, db9" in text.splitlines()


def test_machine_read_json_is_compact_and_sorted(fleet: List[Dict[str, Any]]) -> None:
    files = _report.target_files(fleet[:1]) + _report.fleet_files(fleet[:1])
    for f in files:
        if f["path"].endswith(".json"):
            doc = json.loads(f["content"])
            # no indent: json.dumps takes the C encoder only without one
            assert f["content"] == json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


def test_html_at_scale_is_worst_first_and_collapses_the_clean(fleet: List[Dict[str, Any]]) -> None:
    clean_host = copy.deepcopy(fleet[1])
    clean_host["host"] = "zz-clean"
    for t in clean_host["targets"].values():
        t["findings"], t["worst"], t["counts"] = [], None, {"info": 0, "warning": 0, "critical": 0}
        for c in t["worst_by_layer"].values():
            c.update(severity=None, id=None, subject=None, count=0)
    clean_host["findings"], clean_host["unread"] = [], []
    page = _report.render_html(fleet + [clean_host])
    rows = page_rows(page)
    sevs = [r["sev"] for r in rows]
    assert sevs[0] == "critical"
    # grouped by host, hosts worst first; the clean targets of a host are one row that counts them
    hosts = [r["host"] for r in rows]
    groups = [h for i, h in enumerate(hosts) if i == 0 or hosts[i - 1] != h]
    assert len(groups) == len(set(groups)) == 60
    assert "zz-clean" not in hosts and "1 clean host(s)" in page
    shown = sum(1 for r in rows if r["t"] != "-1")
    data = page_data(page)
    counted = sum(int(r[1].split()[0]) for r in data["rows"] if r[14])
    counted += sum(int(c.split(">")[1].split()[0]) for c in page.split('<td class="sub"')[1:])
    assert shown + counted == 1200
    # the page's HTML holds the first rows only (whole host groups), the script adds the rest after the load
    html_rows = page[page.index("<tbody>"):page.index("</tbody>")].count("<tr ")
    assert _report_html.FIRST_ROWS <= html_rows < _report_html.FIRST_ROWS + 25 and data["rows"]
    # filters and sorting are there, inline
    for needle in ('name="sev" value="critical"', 'name="layer"', 'name="host"', 'name="fid"', 'class="s" data-t="n"'):
        assert needle in page
    assert "<option>netfilter.random_drop</option>" in page
