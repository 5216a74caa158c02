# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report sets of several runs (the slices of a sliced job, runs from several control nodes) read back into the
diagnoses they were written from, and merged into one fleet: the report_files action then writes every report of it
with the same writers as a run's (report.report_plan). docs/report-schema.md#merging-report-sets says what is
refused and how a host found in two sets is resolved.

Reads files on the controller (the report sets), never writes. This module_utils is PRIVATE and should only be used
by this collection.
"""
from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import sort_findings
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.diagnosis import assemble
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports.report import SCHEMA, SUMMARY_SCHEMA, run_ref, safe_name

# what a per-target JSON has besides the target's own fields (report.target_report)
_TARGET_HEAD = ("schema", "generated_at", "host", "label", "run")


class MergeError(ValueError):
    """A report set that cannot be merged, or sets that cannot be merged together; the message names what."""


def _load(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise MergeError("%s is missing" % path)
    except (OSError, ValueError) as exc:
        raise MergeError("cannot read %s: %s" % (path, exc))


def _ref(value: Any) -> Tuple[str, str]:
    value = value if isinstance(value, dict) else {}
    return (str(value.get("id")), "" if value.get("slice") is None else str(value.get("slice")))


def _name(ref: Tuple[str, str]) -> str:
    return "run %s%s" % (ref[0], " slice %s" % ref[1] if ref[1] else "")


def load_set(directory: str) -> Dict[str, Any]:
    """One report set: {dir, summary, hosts: {host: {record, docs}}} with every per-target JSON its summary.json
    lists, each checked (schema, host, label, run); files summary.json does not list (left from older runs) are not
    read. MergeError names the file and what is wrong."""
    directory = os.path.realpath(directory)
    path = os.path.join(directory, "summary.json")
    if not os.path.isfile(path):
        raise MergeError("%s has no summary.json: not a report set (the diagnose role writes one per run)" % directory)
    doc = _load(path)
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema != SUMMARY_SCHEMA:
        raise MergeError("%s is %s, not %s: merge report sets of one schema version, with a collection version that "
                         "reads it" % (path, schema or "not a summary", SUMMARY_SCHEMA))
    if not isinstance(doc.get("run"), dict) or not doc["run"].get("id"):
        raise MergeError("%s names no run (written before report sets carried their run, netdiag.packetloss 0.1.0 "
                         "before issue 13): diagnose again to merge it" % path)
    runs = dict((_ref(r), r) for r in doc.get("runs") or [doc["run"]])
    records = dict((str(r.get("host")), r) for r in doc.get("diagnoses") or [])
    hosts: Dict[str, Dict[str, Any]] = {}
    for row in doc.get("rows") or []:
        host, label = str(row.get("host")), str(row.get("target"))
        if host not in records:
            raise MergeError("%s: host %s has a row but no entry in diagnoses" % (path, host))
        target_path = os.path.join(directory, safe_name(host), safe_name(label) + ".json")
        target = _load(target_path)
        if not isinstance(target, dict) or target.get("schema") != SCHEMA:
            raise MergeError("%s is %s, not %s" % (target_path, (target or {}).get("schema") if isinstance(target, dict)
                                                   else "not a target report", SCHEMA))
        if str(target.get("host")) != host or target.get("label") != label:
            raise MergeError("%s is the report of %s %s, summary.json lists %s %s there (two target labels with one "
                             "file name?)" % (target_path, target.get("host"), target.get("label"), host, label))
        if _ref(target.get("run")) != _ref(records[host].get("run")):
            raise MergeError("%s is from %s, summary.json says %s: the directory holds files of two runs" % (
                target_path, _name(_ref(target.get("run"))), _name(_ref(records[host].get("run")))))
        hosts.setdefault(host, {"record": records[host], "docs": []})["docs"].append(target)
    for host, record in records.items():
        if _ref(record.get("run")) not in runs:
            raise MergeError("%s: host %s is from %s, which is not among the set's runs" % (path, host, _name(_ref(record.get("run")))))
        hosts.setdefault(host, {"record": record, "docs": []})  # a host without targets
    return {"dir": directory, "summary": doc, "runs": runs, "hosts": hosts}


def diagnosis_of(record: Dict[str, Any], docs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A host's diagnosis (diagnosis.assemble, as the run made it) from its entry in summary.json's diagnoses and its
    per-target JSON files, with the run it is from (``run``)."""
    targets = dict((d["label"], dict((k, v) for k, v in d.items() if k not in _TARGET_HEAD)) for d in docs)
    findings = sort_findings([f for t in targets.values() for f in t.get("findings") or []])
    out = assemble(record.get("host"), record.get("generated_at"), targets, findings, list(record.get("probes") or []))
    out["run"] = run_ref(record.get("run"))
    return out


def _when(text: Any) -> datetime.datetime:
    try:
        when = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def merge_sets(sets: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[str], Dict[str, Any]]:
    """(diagnoses, hosts without one, the merge's record for summary.json) of report sets (load_set).

    Refused (MergeError): one run (id and slice) recorded differently in two sets; a host whose report from one run
    differs between two sets; a host in two slices of one run (same run id, or same run group). A host in sets of
    different runs: the newest diagnosis of it wins, the whole host (by its generated_at, then the run's
    finished_at, then run id and slice, the greatest), and the others are listed in ``superseded``."""
    seen_dirs: Dict[str, Dict[str, Any]] = {}
    for s in sets:
        seen_dirs.setdefault(s["dir"], s)  # the same directory given twice: once
    sets = sorted(seen_dirs.values(), key=lambda s: s["dir"])
    runs: Dict[Tuple[str, str], Tuple[Dict[str, Any], str]] = {}
    for s in sets:
        for ref, run in s["runs"].items():
            if ref in runs and runs[ref][0] != run:
                raise MergeError("%s is recorded differently in %s and %s: two runs with one id and slice (give each run "
                                 "its own packetloss_run_id or packetloss_run_slice)" % (_name(ref), runs[ref][1], s["dir"]))
            runs.setdefault(ref, (run, s["dir"]))
    chosen: Dict[str, Dict[str, Any]] = {}
    superseded: List[Dict[str, Any]] = []
    for s in sets:
        for host, entry in s["hosts"].items():
            ref = _ref(entry["record"].get("run"))
            run = runs[ref][0]
            cand = {"entry": entry, "ref": ref, "group": run.get("group"), "dir": s["dir"],
                    "key": (_when(entry["record"].get("generated_at")), _when(run.get("finished_at")), ref)}
            other = chosen.get(host)
            if other is None:
                chosen[host] = cand
                continue
            if ref == other["ref"]:
                if entry != other["entry"]:
                    raise MergeError("host %s of %s differs between %s and %s: one run's report of a host is written once"
                                     % (host, _name(ref), other["dir"], s["dir"]))
                continue
            if ref[0] == other["ref"][0] or (cand["group"] is not None and cand["group"] == other["group"]):
                raise MergeError("slices overlap: host %s is in %s (%s) and in %s (%s), slices of one run%s; a fleet's "
                                 "slices must not share hosts" % (
                                     host, _name(other["ref"]), other["dir"], _name(ref), s["dir"],
                                     " (group %s)" % cand["group"] if cand["group"] is not None and ref[0] != other["ref"][0] else ""))
            keep, drop = (cand, other) if cand["key"] > other["key"] else (other, cand)
            chosen[host] = keep
            superseded.append({"host": host, "kept": {"id": keep["ref"][0], "slice": keep["ref"][1] or None, "dir": keep["dir"]},
                               "dropped": {"id": drop["ref"][0], "slice": drop["ref"][1] or None, "dir": drop["dir"]}})
    diagnoses = [diagnosis_of(chosen[h]["entry"]["record"], chosen[h]["entry"]["docs"]) for h in sorted(chosen)]
    missing = sorted(set(str(h) for s in sets for h in s["summary"].get("missing") or []) - set(chosen))
    record = {
        "runs": [r for r, _d in sorted(runs.values(), key=lambda rd: (str(rd[0].get("started_at")), _ref(rd[0])))],
        "sources": [{"dir": s["dir"], "run": {"id": s["summary"]["run"].get("id"), "slice": s["summary"]["run"].get("slice")},
                     "hosts": sum(1 for h, c in chosen.items() if c["dir"] == s["dir"])} for s in sets],
        "superseded": sorted(superseded, key=lambda x: (x["host"], x["dropped"]["id"], str(x["dropped"]["slice"]))),
    }
    return diagnoses, missing, record


def started_at(runs: List[Dict[str, Any]]) -> Optional[str]:
    """The earliest start of ``runs`` (their started_at)."""
    starts = [r.get("started_at") for r in runs if r.get("started_at")]
    return min(starts, key=_when) if starts else None


__all__ = ["MergeError", "load_set", "diagnosis_of", "merge_sets", "started_at"]
