"""report.html at fleet scale in a real browser (issue 13): 1000 hosts x 20 targets, headless Chromium.

The page must be usable at that size: it opens in at most 2 s (the browser's own clock: performance.now() when
the load event has fired and the first screen is laid out, not the wall time of starting Chromium), and the first
screen of a 1280x900 window shows critical rows, worst first and grouped by host.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, List

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "bench"))
from report_scale import Fleet  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report  # noqa: E402  pylint: disable=wrong-import-position

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTS, TARGETS, LIMIT_MS, ATTEMPTS = 1000, 20, 2000.0, 3

# Appended to a copy of the page: at the load event, force the first layout, then record the browser's clock and
# what the first screen shows into an attribute that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", function () {
  var rows = document.querySelectorAll("#grid tbody tr"), seen = [];
  for (var i = 0; i < rows.length; i++) {
    var box = rows[i].getBoundingClientRect();
    if (box.top >= window.innerHeight) break;
    if (box.bottom > 0 && box.height > 0) seen.push(rows[i].getAttribute("data-sev"));
  }
  var ms = performance.now();
  // then the whole table (what the page's script adds after the load), and a critical cell's finding opened
  window.packetlossReport.all();
  rows = document.querySelectorAll("#grid tbody tr");
  var hosts = [], order = [];
  for (var j = 0; j < rows.length; j++) {
    var h = rows[j].getAttribute("data-host");
    if (!hosts.length || hosts[hosts.length - 1] !== h) hosts.push(h);
    order.push(rows[j].getAttribute("data-sev"));
  }
  var link = document.querySelector("#grid tbody tr[data-sev=critical] td.critical a"), anchor = link.getAttribute("href").slice(1);
  link.click();
  var opened = document.getElementById(anchor), evidence = opened ? opened.querySelectorAll("table").length : 0;
  // the filters: one host; one finding id; then the sort by a column (ascending on a second click)
  var form = document.getElementById("filters");
  form.host.value = "host0007";
  form.host.dispatchEvent(new Event("input", {bubbles: true}));
  var visible = Array.prototype.filter.call(document.querySelectorAll("#grid tbody tr"), function (r) {
    return !r.classList.contains("hide"); });
  var hostOnly = visible.length > 0 && visible.every(function (r) { return r.getAttribute("data-host") === "host0007"; });
  form.host.value = "";
  form.fid.value = "conntrack.drop";
  form.fid.dispatchEvent(new Event("change", {bubbles: true}));
  visible = Array.prototype.filter.call(document.querySelectorAll("#grid tbody tr"), function (r) {
    return !r.classList.contains("hide"); });
  var fidOnly = visible.length > 0 && visible.every(function (r) {
    return (" " + r.getAttribute("data-ids") + " ").indexOf(" conntrack.drop ") >= 0; });
  form.fid.value = "";
  form.fid.dispatchEvent(new Event("change", {bubbles: true}));
  var worst = document.querySelectorAll("#grid thead th")[2];
  worst.click(); worst.click();
  var sortedFirst = document.querySelector("#grid tbody tr").getAttribute("data-sev");
  document.documentElement.setAttribute("data-probe", JSON.stringify(
    {ms: ms, screen: seen, rows: rows.length, groups: hosts.length, distinct: new Set(hosts).size,
     height: window.innerHeight, first: order[0], opened: !!(opened && opened.open && opened.tagName === "DETAILS"),
     evidence: evidence, hostOnly: hostOnly, fidOnly: fidOnly, sortedFirst: sortedFirst}));
});
</script>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    """report.html of a 1000 x 20 fleet built from the real snapshots (bench/report_scale.py): 100 hosts through
    host_diagnosis, the other 900 their copies under other names (the same content, so the same cost)."""
    fleet = Fleet()
    unique = [fleet.host(i, TARGETS) for i in range(100)]
    diagnoses: List[Dict[str, Any]] = []
    for i in range(HOSTS):
        text = json.dumps(unique[i % 100]).replace('"host%04d"' % (i % 100), '"host%04d"' % i)
        diagnoses.append(json.loads(text))
    assert sum(len(d["targets"]) for d in diagnoses) == HOSTS * TARGETS
    html = _report.render_html(diagnoses)
    path = tmp_path_factory.mktemp("browser") / "report.html"
    path.write_text(html.replace("</body></html>", PROBE + "</body></html>"), encoding="utf-8")
    return str(path)


def load(path: str, profile: str) -> Dict[str, Any]:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=%s" % profile,
           "--window-size=1280,900", "--dump-dom", "file://" + path]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=180, check=False)
    match = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert match, "no measurement in the dumped DOM (exit %d): %s" % (proc.returncode, proc.stderr[-2000:])
    return json.loads(match.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/lib.sh APT_PACKAGES installs it)")
def test_a_1000x20_report_opens_in_two_seconds_with_critical_rows_first(page, tmp_path):
    size_mb = os.path.getsize(page) / 1e6
    results = []
    for attempt in range(ATTEMPTS):  # a loaded machine: the best of up to three loads, each timed by the browser
        results.append(load(page, str(tmp_path / ("profile%d" % attempt))))
        if results[-1]["ms"] <= LIMIT_MS:
            break
    best = min(results, key=lambda r: r["ms"])
    print("report.html %.1f MB, %d rows in %d host groups; load + first layout: %s ms" % (
        size_mb, best["rows"], best["groups"], ", ".join("%.0f" % r["ms"] for r in results)))
    assert best["ms"] <= LIMIT_MS, results
    # the first screen: critical rows, the worst first
    assert best["height"] > 700, best
    assert best["screen"] and best["screen"][0] == "critical", best
    # grouped by host: every host's rows together (1000 hosts, each with a critical target, so 1000 groups)
    assert best["groups"] == best["distinct"] == HOSTS, best
    assert best["first"] == "critical"
    # a critical cell opens its finding, with its evidence
    assert best["opened"] and best["evidence"] >= 1, best
    # the filters keep only what they name; a second click on "worst" sorts ascending: clean rows first
    assert best["hostOnly"] and best["fidOnly"], best
    assert best["sortedFirst"] == "clean", best
