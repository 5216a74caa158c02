# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""merge: report sets written by the report writers, read back and merged - the same reports as the unsliced fleet's,
refusals that name what is wrong (cases/merge.yml), duplicates resolved by one rule; and the bounded workflow result."""
from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, List, Optional

import pytest
import yaml

from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import merge as _merge
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report
from test_report import PROBES, diagnosis  # the report tests' diagnoses (same directory)

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "merge.yml")) as _f:
    CASES = yaml.safe_load(_f)["cases"]

# host -> the analyzer case its diagnosis comes from
HOSTS = {"web1": "random-drop-input-and-output-the-seeds-case", "db1": "clean-host-and-container-busy-but-not-dropping",
         "lb1": "softnet-backlog-drops-and-squeezes", "app1": "tcp-symptoms-unexplained",
         "edge1": "qdisc-drops-tbf-critical", "nat1": "conntrack-at-its-limit-and-dropping"}
REPORT_DIR = "/srv/reports/fleet"
FLEET_FILES = ("report.md", "report.html", "junit.xml", "summary.txt")


def host(name: str, generated_at: str = "2026-11-27T01:00:00+00:00") -> Dict[str, Any]:
    d = diagnosis(HOSTS[name], host=name, probes=PROBES if name == "web1" else None)
    d["generated_at"] = generated_at
    return d


def run(rid: str, group: Optional[str] = None, slice_: Optional[str] = None, **more: Any) -> Dict[str, Any]:
    out = {"id": rid, "group": group, "slice": slice_, "limit": None, "kind": "run", "hosts": 0,
           "started_at": "2026-11-27T00:59:00+00:00", "finished_at": "2026-11-27T01:01:00+00:00",
           "collection_version": "0.1.0", "ansible_version": "2.19.14"}
    out.update(more)
    return out


def write_set(directory: str, diagnoses: List[Dict[str, Any]], run_: Dict[str, Any], missing: Any = (),
              merged: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """The report set the report_files action writes (report_plan with the run); {path: content}."""
    plan, _console = _report.report_plan(diagnoses, REPORT_DIR, missing=missing, run=run_, merged=merged)
    files = {}
    with _report.evidence_cache():
        for path, render in plan:
            files[path] = render()
            os.makedirs(os.path.dirname(os.path.join(directory, path)), exist_ok=True)
            with open(os.path.join(directory, path), "w") as f:
                f.write(files[path])
    return files


def rendered(diagnoses: List[Dict[str, Any]], missing: Any = ()) -> Dict[str, str]:
    plan, console = _report.report_plan(diagnoses, REPORT_DIR, missing=missing)
    with _report.evidence_cache():
        out = dict((p, r()) for p, r in plan if p in FLEET_FILES)
    out["console"] = console
    return out


def merged(dirs: List[str]) -> Any:
    return _merge.merge_sets([_merge.load_set(d) for d in dirs])


def test_a_set_read_back_is_the_diagnoses_it_was_written_from(tmp_path) -> None:
    fleet = [host(h) for h in HOSTS]
    write_set(str(tmp_path / "a"), fleet, run("r1"), missing=["down1"])
    diagnoses, missing, record = merged([str(tmp_path / "a")])
    assert missing == ["down1"]
    want = json.loads(json.dumps(fleet))  # as JSON has it
    for d in diagnoses:
        assert d.pop("run") == {"id": "r1", "slice": None}
    assert diagnoses == sorted(want, key=lambda d: d["host"])
    assert [p["target"] for p in diagnoses[-1]["unmatched_probes"]] == ["container:gone"]
    assert rendered(diagnoses, missing) == rendered(fleet, ["down1"])
    assert record["sources"] == [{"dir": str(tmp_path / "a"), "run": {"id": "r1", "slice": None}, "hosts": len(HOSTS)}]
    assert record["superseded"] == []


def test_three_slices_merged_are_the_unsliced_fleet(tmp_path) -> None:
    names = sorted(HOSTS)
    slices = [names[0:2], names[2:3], names[3:]]
    for n, part in enumerate(slices):
        write_set(str(tmp_path / ("s%d" % n)), [host(h) for h in part], run("r%d" % n, "g", "%d/3" % (n + 1)),
                  missing=["down1"] if n == 1 else ())
    diagnoses, missing, record = merged([str(tmp_path / "s2"), str(tmp_path / "s0"), str(tmp_path / "s1")])
    assert [d["host"] for d in diagnoses] == names and missing == ["down1"]
    assert rendered(diagnoses, missing) == rendered([host(h) for h in names], ["down1"])
    assert [r["id"] for r in record["runs"]] == ["r0", "r1", "r2"]
    # the merged set, written and merged again with one of its slices, is the same fleet
    files = write_set(str(tmp_path / "m"), diagnoses, run("m1", kind="merge"), missing, record)
    doc = json.loads(files["summary.json"])
    assert [r["id"] for r in doc["runs"]] == ["r0", "r1", "r2"] and doc["run"]["id"] == "m1"
    assert json.loads(files["web1/host.json"])["run"] == {"id": "r2", "slice": "3/3"}
    assert "packetloss_finding{" in files[_report.TEXTFILE]
    again, missing2, _record = merged([str(tmp_path / "m"), str(tmp_path / "s0")])
    assert rendered(again, missing2) == rendered(diagnoses, missing)


def test_a_host_in_runs_of_no_common_group_is_taken_whole_from_its_newest_diagnosis(tmp_path) -> None:
    old, new = "2026-11-27T01:00:00+00:00", "2026-11-27T02:00:00+00:00"
    write_set(str(tmp_path / "a"), [host("web1", old), host("db1", old)], run("monday"))
    newer = host("web1", new)
    del newer["targets"]["container:nginx"]  # the container is gone by the second run
    write_set(str(tmp_path / "b"), [newer], run("tuesday"))
    for order in (["a", "b"], ["b", "a"]):  # whatever the order the sets are given in
        diagnoses, _missing, record = merged([str(tmp_path / d) for d in order])
        web1 = next(d for d in diagnoses if d["host"] == "web1")
        assert web1["generated_at"] == new and list(web1["targets"]) == ["host"], order
        assert record["superseded"] == [{"host": "web1", "kept": {"id": "tuesday", "slice": None, "dir": str(tmp_path / "b")},
                                         "dropped": {"id": "monday", "slice": None, "dir": str(tmp_path / "a")}}]


def test_the_same_set_given_twice_or_copied_counts_once(tmp_path) -> None:
    write_set(str(tmp_path / "a"), [host("web1"), host("db1")], run("r1"))
    write_set(str(tmp_path / "copy"), [host("web1"), host("db1")], run("r1"))
    diagnoses, _missing, record = merged([str(tmp_path / "a"), str(tmp_path / "a"), str(tmp_path / "copy")])
    assert [d["host"] for d in diagnoses] == ["db1", "web1"] and record["superseded"] == []


def test_files_the_summary_does_not_list_are_not_read(tmp_path) -> None:
    write_set(str(tmp_path / "a"), [host("web1")], run("r1"))
    (tmp_path / "a" / "web1" / "container_old.json").write_text("left by an older run, not JSON")
    diagnoses, _missing, _record = merged([str(tmp_path / "a")])
    assert list(diagnoses[0]["targets"]) == ["host", "container:nginx"]


def _edit(doc: Any, keys: List[Any], value: Any, delete: bool) -> None:
    for k in keys[:-1]:
        doc = doc[k]
    if delete:
        del doc[keys[-1]]
    else:
        doc[keys[-1]] = value


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_sets_that_cannot_be_merged_are_refused_naming_what(case: Dict[str, Any], tmp_path) -> None:
    dirs = []
    for n, spec in enumerate(case["sets"]):
        directory = str(tmp_path / ("set%d" % n))
        r = spec["run"]
        more = dict((k, v) for k, v in r.items() if k not in ("id", "group", "slice"))
        write_set(directory, [host(h) for h in spec["hosts"]], run(r["id"], r.get("group"), r.get("slice"), **more))
        dirs.append(directory)
    for e in case.get("edit") or []:
        path = os.path.join(dirs[e["set"]], e["file"])
        if "key" not in e:
            os.unlink(path)
            continue
        with open(path) as f:
            doc = json.load(f)
        _edit(doc, e["key"], e.get("value"), bool(e.get("delete")))
        with open(path, "w") as f:
            json.dump(doc, f)
    with pytest.raises(_merge.MergeError) as err:
        merged(dirs)
    text = str(err.value)
    for want in case["error"]:
        for n, d in enumerate(dirs):
            want = want.replace("SET%d" % n, d)
        assert want in text, text


def test_the_workflow_result_is_bounded_at_20000_targets() -> None:
    web1 = host("web1")  # two targets, two critical findings on container:nginx
    fleet = []
    for i in range(10000):  # 20,000 targets: each host the same diagnosis under its own name
        d = dict(web1, host="h%05d" % i)
        d["targets"] = dict((label, dict(t, findings=[dict(f, host=d["host"]) for f in t["findings"]]))
                            for label, t in web1["targets"].items())
        d["findings"] = [f for t in d["targets"].values() for f in t["findings"]]
        fleet.append(d)
    result = _report.workflow_result(fleet, REPORT_DIR, run("r1", "g", "1/3", limit="web*"),
                                     ["down%d" % i for i in range(300)], "warning", 50)
    size = len(json.dumps(result))
    assert size < 40000, size
    assert result["targets"] == 20000 and result["hosts"] == 10000
    assert result["counts"]["critical"] == 20000 and result["findings_total"] == 20000
    assert result["finding_ids"] == {"netfilter.random_drop": 20000}
    assert len(result["findings"]) == 50 and result["targets_above_total"] == 10000 and len(result["targets_above"]) == 50
    assert result["missing_total"] == 300 and len(result["missing"]) == 50 and result["truncated"] is True
    assert result["findings"][0] == {"host": "h00000", "target": "container:nginx", "id": "netfilter.random_drop",
                                     "severity": "critical", "subject": "rule ipv4 filter INPUT #1 (nft)",
                                     "remediation": "random_drop", "remediation_args": web1["findings"][0]["remediation_args"]}
    assert result["run"] == {"id": "r1", "group": "g", "slice": "1/3", "limit": "web*"}
    assert result["report"] == REPORT_DIR + "/report.html"


@pytest.mark.parametrize("severity, ids, above", [
    ("critical", ["tcp.retrans"], 1),
    ("warning", ["softnet.dropped", "softnet.time_squeeze", "tcp.retrans", "tcp.timeouts"], 2),
    ("info", ["softnet.dropped", "softnet.time_squeeze", "tcp.retrans", "tcp.syn_retrans", "tcp.timeouts"], 2),
])
def test_the_workflow_result_takes_findings_from_the_threshold(severity: str, ids: List[str], above: int) -> None:
    result = _report.workflow_result([host("lb1"), host("db1"), host("app1")], None, None, (), severity, 10)
    assert sorted(result["finding_ids"]) == ids and result["targets_above_total"] == above
    assert result["truncated"] is False and result["report"] is None
    assert result["counts"] == dict((s, sum(host(h)["counts"][s] for h in ("lb1", "db1", "app1"))) for s in ("info", "warning", "critical"))
    with pytest.raises(ValueError):
        _report.workflow_result([], severity="fatal")


def test_summary_json_carries_what_a_merge_needs(tmp_path) -> None:
    files = write_set(str(tmp_path / "a"), [host("web1")], run("r1", "g", "2/3", limit="web*"), missing=["down1"])
    doc = json.loads(files["summary.json"])
    assert doc["run"]["id"] == "r1" and doc["run"]["slice"] == "2/3" and doc["run"]["limit"] == "web*"
    assert doc["runs"] == [doc["run"]] and doc["missing"] == ["down1"] and "merge" not in doc
    assert doc["diagnoses"] == [{"host": "web1", "generated_at": "2026-11-27T01:00:00+00:00", "interval": 5.0,
                                 "run": {"id": "r1", "slice": "2/3"}, "probes": host("web1")["probes"]}]
    assert json.loads(files["web1/host.json"])["run"] == {"id": "r1", "slice": "2/3"}
    assert _report.TEXTFILE not in files  # a run's set; a merged set has it
    plain = json.loads(_report.fleet_files([host("web1")])[0]["content"])
    assert "run" not in plain  # the filter's summary.json, without a run: as before
    assert copy.deepcopy(doc["rows"]) == plain["rows"]
