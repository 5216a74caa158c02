# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reports people and CI systems read, from hosts' diagnoses (_analysis/diagnosis.py).

Pure functions, no I/O: they return text; the diagnose role writes it into packetloss_report_dir on the
controller. Formats: per-target JSON (docs/report-schema.md), a fleet summary (JSON and a text table),
Markdown, a self-contained HTML page with a hosts x layers heat map, and JUnit XML.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import contextlib
import functools
import json
import re
import html
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import (
    LAYERS, SEVERITIES, layer_state, not_read, severity_rank, worst_severity)
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.diagnosis import now_iso, unread_rows

SCHEMA = "netdiag.packetloss/target-report/v1"
SUMMARY_SCHEMA = "netdiag.packetloss/summary/v1"
SHORT = {"info": "info", "warning": "warn", "critical": "crit"}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file name for a host or target label: container:nginx -> container_nginx."""
    out = _SAFE.sub("_", str(text)).strip("._") or "_"
    return out[:120]


def console_message(diagnosis: Dict[str, Any], severity: str = "warning") -> str:
    """One host's result for the console: its findings of at least ``severity`` and its layers not read, or
    "no findings above info" only when every layer was read in full."""
    above = [f for f in diagnosis.get("findings") or [] if severity_rank(f.get("severity")) >= severity_rank(severity)]
    parts = ["%s %s %s: %s" % (f["severity"], f["target"], f["id"], f["summary"]) for f in above]
    if not above:
        infos = len(diagnosis.get("findings") or [])
        parts.append("no findings above info (%d info)" % infos)
    for u in diagnosis["unread"] if "unread" in diagnosis else unread_rows(diagnosis):
        if u["state"] == "not_collected":
            continue
        parts.append("%s %s %s: %s" % ("n/a" if u["state"] == "unread" else "partly read", u["target"], u["layer"], u["reason"]))
    return "; ".join(parts)


def _diagnoses(diagnoses: Any) -> List[Dict[str, Any]]:
    if isinstance(diagnoses, dict):
        diagnoses = [diagnoses] if "targets" in diagnoses else list(diagnoses.values())
    return sorted((d for d in diagnoses or [] if isinstance(d, dict)), key=lambda d: str(d.get("host")))


def _rows(diagnoses: Any) -> Iterable[Tuple[Dict[str, Any], str, Dict[str, Any]]]:
    for d in _diagnoses(diagnoses):
        for label, t in d.get("targets", {}).items():
            yield d, label, t


# ------------------------------------------------------------------------------------------------
# per-target JSON and the fleet summary
# ------------------------------------------------------------------------------------------------


def run_ref(run: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """What names a run in the files of its report set: {id, slice} (docs/report-schema.md#runs)."""
    return {"id": run.get("id"), "slice": run.get("slice")} if isinstance(run, dict) else None


def target_report(diag: Dict[str, Any], label: str, run: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The per-target JSON; ``run``: the run of the report set, unless the diagnosis names its own (a merged set)."""
    t = diag["targets"][label]
    out = {"schema": SCHEMA, "generated_at": diag.get("generated_at"), "host": diag.get("host"), "label": label,
           "run": diag.get("run") or run_ref(run)}
    out.update(t)
    return out


def _probe_cell(probes: List[Dict[str, Any]]) -> str:
    if not probes:
        return "-"
    cells = []
    for p in probes:
        if p["failed"]:
            cells.append("failed (%s)" % p["name"])
        else:
            cells.append("%s%% %s" % (_num(p["loss_percent"]), p["name"]))
    return "; ".join(cells)


def summary_rows(diagnoses: Any) -> List[Dict[str, Any]]:
    rows = []
    for d, label, t in _rows(diagnoses):
        rows.append({"host": d.get("host"), "target": label, "worst": t["worst"], "counts": t["counts"],
                     "layers": t["worst_by_layer"], "not_read": not_read(t.get("layers") or {}),
                     "probes": t["probes"], "probe": _probe_cell(t["probes"])})
    return rows


def summary(diagnoses: Any, report_dir: Optional[str] = None, rows: Optional[List[Dict[str, Any]]] = None,
            run: Optional[Dict[str, Any]] = None, missing: Iterable[str] = (),
            merged: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """summary.json. With ``run`` (the run's record) also what a merge of report sets needs: ``run``, ``runs`` (the
    runs the set is made of: the run itself, or every run a merge took hosts from), ``missing`` (hosts of the run
    without a diagnosis), ``diagnoses`` (per host: when, its interval, its run, its probes in their order) and, for a
    merged set, ``merge`` (``merged``: sources and superseded hosts)."""
    ds = _diagnoses(diagnoses)
    rows = summary_rows(ds) if rows is None else rows
    out = {"schema": SUMMARY_SCHEMA, "generated_at": ds[0].get("generated_at") if ds else now_iso(),
           "hosts": len(ds), "targets": len(rows), "worst": worst_severity(f for d in ds for f in d["findings"]),
           "counts": dict((s, sum(r["counts"][s] for r in rows)) for s in SEVERITIES), "report_dir": report_dir,
           "not_read": sum(len(r["not_read"]) for r in rows), "rows": rows}
    if run is not None:
        ref = run_ref(run)
        out.update(run=run, runs=(merged or {}).get("runs") or [run], missing=sorted(str(h) for h in missing),
                   diagnoses=[{"host": d.get("host"), "generated_at": d.get("generated_at"), "interval": d.get("interval"),
                               "run": d.get("run") or ref, "probes": d.get("probes") or []} for d in ds])
        if merged is not None:
            out["merge"] = dict((k, v) for k, v in merged.items() if k != "runs")
    return out


def _cell(cell: Dict[str, Any]) -> str:
    """A grid cell: '.' clean (read in full, no finding), 'n/a' not read, 'partial' read in part without a finding,
    else the worst finding, with ' (partial)' when the layer was read in part."""
    sev = cell.get("severity")
    partial = cell.get("read") in ("partial", "unread", "not_collected")
    if sev is None:
        return "partial" if partial else "."
    if sev == "n/a":
        return "n/a"
    text = "%s %s" % (SHORT[sev], cell["id"].split(".", 1)[1])
    text += " x%d" % cell["count"] if cell.get("count", 1) > 1 else ""
    return text + (" (partial)" if partial else "")


def summary_table(diagnoses: Any, rows: Optional[List[Dict[str, Any]]] = None) -> str:
    """The fleet summary as a plain-text table: host, target, worst finding per layer, probe loss."""
    header = ["HOST", "TARGET"] + [l.upper() for l in LAYERS] + ["PROBE LOSS"]
    table = [header]
    rows = summary_rows(diagnoses) if rows is None else rows
    for r in rows:
        table.append([str(r["host"]), r["target"]] + [_cell(r["layers"][l]) for l in LAYERS] + [r["probe"]])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    total = dict((s, sum(r["counts"][s] for r in rows)) for s in SEVERITIES)
    lines.append("")
    lines.append("%d target(s) on %d host(s): %d critical, %d warning, %d info finding(s); '.' clean, 'n/a' not read, "
                 "'partial' read in part" % (len(rows), len(_diagnoses(diagnoses)), total["critical"], total["warning"],
                                             total["info"]))
    unread = [(str(d.get("host")), u) for d in _diagnoses(diagnoses) for u in (d["unread"] if "unread" in d else unread_rows(d))
              if u["state"] != "not_collected"]
    for host, u in unread:
        state = "n/a" if u["state"] == "unread" else "partial"
        lines.append("%s %s %s %s: %s" % (state, host, u["target"], u["layer"], u["reason"]))
    return "\n".join(lines)


def _probe_badness(probes: List[Dict[str, Any]]) -> float:
    return max([100.0 if p["failed"] else float(p["loss_percent"] or 0) for p in probes] or [0.0])


def target_order(row: Dict[str, Any]) -> Tuple[Any, ...]:
    """Worst first: by the worst finding, then the layers not read, the probe loss, the findings, host and target."""
    return (-severity_rank(row["worst"]), -len(row["not_read"]), -_probe_badness(row["probes"]),
            -sum(row["counts"].values()), str(row["host"]), row["target"])


def console_summary(diagnoses: Any, worst: int = 20, report_dir: Optional[str] = None, missing: Iterable[str] = (),
                    rows: Optional[List[Dict[str, Any]]] = None) -> str:
    """The fleet summary printed at the end of a run, bounded whatever the fleet's size: the totals, then the worst
    ``worst`` findings above info, layers not read in full and rows of the summary table (worst targets first),
    each with how many more there are (every one is in summary.txt and the reports)."""
    ds = _diagnoses(diagnoses)
    rows = summary_rows(ds) if rows is None else rows
    total = dict((s, sum(r["counts"][s] for r in rows)) for s in SEVERITIES)
    above = [f for d in ds for f in d.get("findings") or [] if severity_rank(f.get("severity")) >= 1]
    above.sort(key=lambda f: (-severity_rank(f["severity"]), str(f.get("host")), f["target"], f["id"], f["subject"]))
    unread = [(str(d.get("host")), u) for d in ds for u in (d["unread"] if "unread" in d else unread_rows(d)) if u["state"] != "not_collected"]
    clean = sum(1 for r in rows if not r["not_read"] and severity_rank(r["worst"]) < 1)
    n = max(0, int(worst))
    lines = ["%d target(s) on %d host(s): %d critical, %d warning, %d info finding(s); %d target(s) without a finding "
             "above info and read in full; %d layer(s) not read in full" % (
                 len(rows), len(ds), total["critical"], total["warning"], total["info"], clean, len(unread))]
    missing = sorted(str(h) for h in missing)
    if missing:
        lines.append("no diagnosis from %d host(s): %s" % (len(missing), ", ".join(missing[:n]) + (" ..." if len(missing) > n else "")))

    def more(count: int, what: str) -> None:
        if count > n:
            lines.append("... and %d more %s (see the reports)" % (count - n, what))

    if above:
        lines += ["", "Findings above info (worst %d of %d):" % (min(n, len(above)), len(above))]
        lines += ["%s: %s %s %s: %s" % (f.get("host"), f["severity"], f["target"], f["id"], f["summary"]) for f in above[:n]]
        more(len(above), "finding(s) above info")
    if unread:
        lines += ["", "Layers not read in full (%d of %d):" % (min(n, len(unread)), len(unread))]
        lines += ["%s %s %s %s: %s" % ("n/a" if u["state"] == "unread" else "partial", host, u["target"], u["layer"], u["reason"])
                  for host, u in unread[:n]]
        more(len(unread), "layer(s) not read in full")
    top = sorted(rows, key=target_order)[:n]
    if top:
        header = ["HOST", "TARGET"] + [l.upper() for l in LAYERS] + ["PROBE LOSS"]
        table = [header] + [[str(r["host"]), r["target"]] + [_cell(r["layers"][l]) for l in LAYERS] + [r["probe"]] for r in top]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines += ["", "Worst targets (%d of %d; '.' clean, 'n/a' not read, 'partial' read in part):" % (len(top), len(rows))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
        more(len(rows), "target(s)")
    if report_dir:
        lines += ["", "reports: %s/report.html (also report.md, junit.xml, summary.json, summary.txt, HOST/TARGET.json)" % report_dir]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# evidence, as rows both Markdown and HTML render
# ------------------------------------------------------------------------------------------------

_COUNTER_KEYS = ("name", "before", "after", "delta", "rate")


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%.3f" % v).rstrip("0").rstrip(".") if not v.is_integer() else "%d" % v
    return str(v)


def _is_counters(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) and "name" in x and "delta" in x for x in v)


_PARTS: Optional[Dict[int, Any]] = None  # evidence_parts by id(evidence), while report_set renders every file


def evidence_parts(evidence: Dict[str, Any]) -> Tuple[List[Tuple[str, List[Dict[str, Any]]]], List[Tuple[str, str]]]:
    """(counter tables [(title, rows)], other facts [(key, text)]) of a finding's evidence."""
    if _PARTS is not None:
        key = id(evidence)
        if key not in _PARTS:
            _PARTS[key] = _evidence_parts(evidence)
        return _PARTS[key]
    return _evidence_parts(evidence)


def _evidence_parts(evidence: Dict[str, Any]) -> Tuple[List[Tuple[str, List[Dict[str, Any]]]], List[Tuple[str, str]]]:
    tables: List[Tuple[str, List[Dict[str, Any]]]] = []
    facts: List[Tuple[str, str]] = []
    for key in sorted(evidence, key=lambda k: (k != "counters", k)):
        value = evidence[key]
        if _is_counters(value):
            tables.append((key, value))
        elif isinstance(value, dict) and _is_counters(value.get("counters")):
            tables.append((key + " (%s)" % value.get("name"), value["counters"]))
        elif isinstance(value, dict):
            # keys sorted, as in the JSON files: the same text whether rendered from a run or from its report set
            facts.append((key, ", ".join("%s=%s" % (k, _compact(v)) for k, v in sorted(value.items()) if v is not None)))
        elif isinstance(value, list) and not value:
            continue
        elif value is not None:
            facts.append((key, _compact(value)))
    return tables, facts


def _compact(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, default=str)
    return _num(v)


def _explained(f: Dict[str, Any]) -> str:
    return ", ".join("%s on %s (%s, %s)" % (x["id"], x["target"], x["subject"], x["severity"]) for x in f.get("explained_by") or [])


def _fix(f: Dict[str, Any]) -> str:
    if f.get("remediation"):
        args = ", ".join("%s=%s" % (k, v) for k, v in sorted((f.get("remediation_args") or {}).items()))
        return "remediation `%s` (%s) - the remediate role can apply it; by hand: %s" % (f["remediation"], args, f.get("advice"))
    return f.get("advice") or ""


# ------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------


_STATE_WORDS = {"unread": "not read", "partial": "read in part", "not_collected": "not collected"}


def _missing(t: Dict[str, Any]) -> List[Tuple[str, str, Any]]:
    """(layer, what happened, reason) of a target's layers not read in full."""
    layers = t.get("layers") or {}
    return [(l, _STATE_WORDS.get(layer_state(layers.get(l)), "not read"), (layers.get(l) or {}).get("reason"))
            for l in not_read(layers)]


def _md(text: Any) -> str:
    """Text from hosts, safe in Markdown (table cells included): no raw HTML, no cell breaks."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|").replace("\n", " ")


def markdown(diagnoses: Any, report_dir: Optional[str] = None, rows: Optional[List[Dict[str, Any]]] = None) -> str:
    ds = _diagnoses(diagnoses)
    s = summary(ds, report_dir, rows)
    out = ["# Packet-loss diagnosis", ""]
    out.append("Generated %s for %d host(s), %d target(s): **%d critical, %d warning, %d info** finding(s)." % (
        s["generated_at"], s["hosts"], s["targets"], s["counts"]["critical"], s["counts"]["warning"], s["counts"]["info"]))
    if s["not_read"]:
        out.append("")
        out.append("**%d layer(s) not read in full: not known to be clean** (`n/a` not read, `partial` read in part)." % s["not_read"])
    out += ["", "## Summary", "", "Worst finding per layer (`.` clean, `n/a` layer not read, `partial` layer read in part).", ""]
    out.append("| host | target | " + " | ".join(LAYERS) + " | probe loss |")
    out.append("|---" * (len(LAYERS) + 3) + "|")
    for r in s["rows"]:
        out.append("| %s | %s | %s | %s |" % (_md(r["host"]), _md(r["target"]),
                                              " | ".join(_cell(r["layers"][l]) for l in LAYERS), _md(r["probe"])))
    probes = [(d["host"], p) for d in ds for p in d["probes"]]
    if probes:
        out += ["", "## Probes", "", "| from host | probe | target | sent | answered | loss % | rtt min/avg/max/p50/p95 ms |",
                "|---|---|---|---|---|---|---|"]
        for host, p in probes:
            rtt = p.get("rtt_ms") or {}
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                _md(host), _md(p["name"]), _md(p["target"]), _num(p["sent"]), _num(p["answered"]),
                "failed: " + _md(p["msg"]) if p["failed"] else _num(p["loss_percent"]),
                "/".join(_num(rtt.get(k)) for k in ("min", "avg", "max", "p50", "p95"))))
    out += ["", "## Findings"]
    quiet = 0
    for d, label, t in _rows(ds):
        if not t["findings"] and not t["warnings"] and not any(
                layer_state(c) != "read" for c in (t.get("layers") or {}).values()):
            quiet += 1  # read in full, nothing found: its row in the summary says so
            continue
        out += ["", "### %s / %s" % (_md(d["host"]), _md(label)), ""]
        out.append("Snapshots %s and %s (interval %s s)." % (
            t["snapshots"]["before"], t["snapshots"]["after"] or "-", _num(t["interval"])))
        for layer, state, reason in _missing(t):
            out.append("- layer %s %s: %s" % (layer, state, _md(reason)))
        for w in t["warnings"]:
            out.append("- warning: %s" % _md(w))
        if not t["findings"]:
            out += ["", "No findings."]
        for f in t["findings"]:
            out += ["", "#### %s `%s` - %s" % (f["severity"].upper(), f["id"], _md(f["subject"])), "", _md(f["summary"]), ""]
            out.append("- **Why:** %s" % _md(f["explanation"]))
            out.append("- **Fix:** %s" % _md(_fix(f)))
            if f.get("explained_by"):
                out.append("- **Explained by:** %s" % _md(_explained(f)))
            tables, facts = evidence_parts(f["evidence"])
            for key, text in facts:
                out.append("- %s: `%s`" % (key, text.replace("`", "'").replace("\n", " ")))
            for title, counters in tables:
                out += ["", "| %s | before | after | delta | rate/s |" % _md(title), "|---|---|---|---|---|"]
                for c in counters:
                    out.append("| %s | %s | %s | %s | %s |" % (
                        _md(c["name"]), _num(c.get("before")), _num(c.get("after")), _num(c.get("delta")), _num(c.get("rate"))))
    if quiet:
        out += ["", "%d more target(s) read in full without findings (each a row of the summary above)." % quiet]
    out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------

def _anchor(host: str, label: str, index: int) -> str:
    return "f-%s-%s-%d" % (safe_name(host), safe_name(label), index)


_SEV_CLASS = {None: "clean", "n/a": "na", "info": "info", "warning": "warning", "critical": "critical"}


def _html_cell(cell: Dict[str, Any], cov: Dict[str, Any], href: Optional[str]) -> Dict[str, Any]:
    sev = cell.get("severity")
    read = cell.get("read", "read")
    cls = "partial" if sev is None and read != "read" else _SEV_CLASS.get(sev, "clean")
    title = cell.get("subject") if cell.get("id") else (cov.get("reason") if read != "read" else None)
    return {"cls": cls, "rank": severity_rank(sev) if sev in SEVERITIES else (-1 if cls in ("na", "partial") else -2),
            "text": _cell(cell), "href": href, "title": title}


def _html_finding(f: Dict[str, Any], anchor: str) -> Dict[str, Any]:
    tables, facts = evidence_parts(f["evidence"])
    return {"anchor": anchor, "open": False, "severity": f["severity"], "id": f["id"], "summary": f["summary"],
            "explanation": f["explanation"], "remediation": f.get("remediation"),
            "remediation_args": json.dumps(f.get("remediation_args") or {}, sort_keys=True), "advice": f.get("advice") or "",
            "explained": _explained(f) + (" and %d more on other targets of the host" % f["explained_by_others"]
                                          if f.get("explained_by_others") else ""),
            "facts": facts, "tables": [(title, [(c["name"], _num(c.get("before")), _num(c.get("after")), _num(c.get("delta")),
                                                 _num(c.get("rate"))) for c in rows]) for title, rows in tables]}


def render_html(diagnoses: Any, report_dir: Optional[str] = None, rows: Optional[List[Dict[str, Any]]] = None) -> str:
    """A self-contained page (inline CSS and JS, nothing fetched; _report_html.PAGE, rendered with Jinja2): worst
    first and grouped by host, clean hosts and targets collapsed into counts, filters by severity, layer, host and
    finding id, sortable columns, and the evidence of every finding."""
    from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import html as _report_html  # pylint: disable=import-outside-toplevel
    ds = _diagnoses(diagnoses)
    rows = summary_rows(ds) if rows is None else rows
    s = summary(ds, report_dir, rows)
    by_key = dict(((str(r["host"]), r["target"]), r) for r in rows)
    groups: Dict[str, Dict[str, Any]] = {}
    details: List[Dict[str, Any]] = []  # per target row (tid): its findings, rendered by the page's script on demand
    clean_targets = 0
    ids = set()
    for d, label, t in _rows(ds):
        host = str(d["host"])
        g = groups.setdefault(host, {"host": host, "rows": [], "clean": 0, "key": None})
        row = by_key.get((host, label)) or {"host": host, "target": label, "worst": t["worst"], "counts": t["counts"],
                                            "not_read": not_read(t.get("layers") or {}), "probes": t["probes"]}
        key = target_order(row)
        g["key"] = key if g["key"] is None else min(g["key"], key)
        if not row["not_read"] and severity_rank(t["worst"]) < 1 and _probe_badness(t["probes"]) == 0:
            g["clean"] += 1
            clean_targets += 1
            continue
        cells, layers = [], []
        for layer in LAYERS:
            cell = t["worst_by_layer"][layer]
            href = None
            if cell.get("id"):
                index = next(n for n, f in enumerate(t["findings"]) if f["layer"] == layer and f["severity"] == cell["severity"])
                href = _anchor(host, label, index)
            if cell.get("id") or cell.get("read", "read") != "read":
                layers.append(layer)
            clean = cell.get("severity") is None and cell.get("read", "read") == "read"
            cells.append(None if clean else _html_cell(cell, t["layers"].get(layer) or {}, href))  # None: '.
        fids = sorted(set(f["id"] for f in t["findings"]))
        ids.update(fids)
        sev = _SEV_CLASS.get(t["worst"], "clean") if severity_rank(t["worst"]) >= 1 or not row["not_read"] else "na"
        g["rows"].append((key, {"target": label, "sev": sev, "worst": t["worst"] or ("n/a" if row["not_read"] else "clean"),
                                "rank": severity_rank(t["worst"]) if t["worst"] else (-1 if row["not_read"] else -2),
                                "layers": " ".join(layers), "ids": " ".join(fids), "cells": cells,
                                "nfindings": len(t["findings"]), "loss": _probe_badness(t["probes"]),
                                "probe": _probe_cell(t["probes"]), "tid": len(details)}))
        details.append({
            "before": t["snapshots"]["before"], "after": t["snapshots"]["after"] or "-", "interval": _num(t["interval"]),
            "missing": _missing(t) if row["not_read"] else [], "warnings": t["warnings"],
            "findings": [_html_finding(f, _anchor(host, label, n)) for n, f in enumerate(t["findings"])]})
    ordered = sorted((g for g in groups.values() if g["rows"]), key=lambda g: g["key"])
    grid: List[List[Any]] = []  # every row of the heat map, worst first and grouped by host (_report_html.ROW)
    for order, g in enumerate(ordered):
        for n, (_k, r) in enumerate(sorted(g["rows"], key=lambda kr: kr[0])):
            grid.append([g["host"], r["target"], r["sev"], r["worst"], r["rank"], r["layers"], r["ids"], order,
                         [c and [c["cls"], c["rank"], c["text"], c["href"], c["title"]] for c in r["cells"]],
                         r["nfindings"], r["loss"], r["probe"], int(n == 0), r["tid"], 0])
        if g["clean"]:
            grid.append([g["host"], "%d more target(s) clean" % g["clean"], "clean", "clean", -2, "", "", order,
                         [None] * len(LAYERS), "", 0, "", 0, -1, 1])
    first = _report_html.FIRST_ROWS
    while first < len(grid) and grid[first][7] == grid[first - 1][7]:
        first += 1  # whole host groups in the page's HTML
    probes = [{"host": d["host"], "name": p["name"], "target": p["target"], "sent": _num(p["sent"]),
               "answered": _num(p["answered"]), "loss": "failed: %s" % p["msg"] if p["failed"] else _num(p["loss_percent"]),
               "rtt": " / ".join(_num((p.get("rtt_ms") or {}).get(k)) for k in ("min", "avg", "max", "p50", "p95"))}
              for d in ds for p in d["probes"]]
    return _report_html.render({
        "s": s, "layers": LAYERS, "ids": sorted(ids), "rows": grid[:first], "clean_targets": clean_targets,
        "clean_hosts": sorted(g["host"] for g in groups.values() if not g["rows"]), "probes": probes,
        "data": {"rows": grid[first:], "details": details}})


# ------------------------------------------------------------------------------------------------
# JUnit XML
# ------------------------------------------------------------------------------------------------


def _xattr(value: Any) -> str:
    """An XML attribute value, quoted (line breaks and tabs kept as character references, as ElementTree does)."""
    return '"%s"' % html.escape(str(value), True).replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")


def _attrs(**attrs: Any) -> str:
    return "".join(" %s=%s" % (k, _xattr(v)) for k, v in attrs.items())


def _case(classname: str, name: str, children: List[Tuple[str, Dict[str, Any], Optional[str]]]) -> str:
    """A <testcase> with its children (tag, attributes, text), indented as the rest of the file; ``classname``
    already an attribute value (_xattr)."""
    head = "    <testcase classname=%s name=%s" % (classname, _xattr(name))
    if not children:
        return head + " />"
    parts = [head + ">"]
    for tag, attrs, text in children:
        parts.append("      <%s%s%s" % (tag, _attrs(**attrs), " />" if text is None else ">%s</%s>" % (
            html.escape(text, False), tag)))
    parts.append("    </testcase>")
    return "\n".join(parts)


def junit(diagnoses: Any, fail_severity: str = "warning", max_probe_loss: float = 0.0) -> str:
    """One test suite per host; a test case per target and layer (failing on a finding of at least
    ``fail_severity``, else skipped when the layer was not read in full) and per probe (failing above
    ``max_probe_loss`` %). The compliance gate (_compliance.junit) is the one that fails on unread layers.

    Written as text (escaped by xml.sax.saxutils): an ElementTree of 180,000 test cases costs seconds at 20,000
    targets (docs/report-scale.md)."""
    if fail_severity not in SEVERITIES:
        raise ValueError("fail_severity must be one of %s" % ", ".join(SEVERITIES))
    ds = _diagnoses(diagnoses)
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    suites: List[str] = []
    floor = severity_rank(fail_severity)
    for d in ds:
        host = str(d["host"])
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        cases: List[str] = []
        for label, t in d["targets"].items():
            by_layer: Dict[str, List[Dict[str, Any]]] = {}
            for f in t["findings"]:
                by_layer.setdefault(f["layer"], []).append(f)
            classname = _xattr("%s.%s" % (host, label))
            for layer in LAYERS:
                counts["tests"] += 1
                cov = t["layers"].get(layer, {})
                state = layer_state(cov)
                layer_findings = by_layer.get(layer, [])
                bad = [f for f in layer_findings if severity_rank(f["severity"]) >= floor]
                children: List[Tuple[str, Dict[str, Any], Optional[str]]] = []
                if bad:
                    counts["failures"] += 1
                    message = "; ".join("%s: %s" % (f["id"], f["summary"]) for f in bad)
                    if state != "read":
                        message += " (layer %s: %s)" % (_STATE_WORDS.get(state, "not read"), cov.get("reason"))
                    children.append(("failure", {"type": worst_severity(bad) or "", "message": message},
                                     "\n\n".join(_finding_text(f) for f in bad)))
                else:
                    if state != "read":  # never a pass: not known to be clean
                        counts["skipped"] += 1
                        children.append(("skipped", {"message": "n/a - layer %s: %s" % (
                            _STATE_WORDS.get(state, "not read"), cov.get("reason"))}, None))
                    if layer_findings:
                        children.append(("system-out", {}, "\n\n".join(_finding_text(f) for f in layer_findings)))
                cases.append(_case(classname, layer, children) if children else
                             "    <testcase classname=%s name=\"%s\" />" % (classname, layer))
        for p in d["probes"]:
            counts["tests"] += 1
            children = []
            if p["failed"]:
                counts["failures"] += 1
                children.append(("failure", {"type": "probe", "message": "probe failed: %s" % p["msg"]}, None))
            elif (p["loss_percent"] or 0) > max_probe_loss:
                counts["failures"] += 1
                rtt = p.get("rtt_ms") or {}
                children.append(("failure", {"type": "loss", "message": "%s%% loss (%s of %s answered) to %s" % (
                    _num(p["loss_percent"]), p["answered"], p["sent"], p["name"])},
                    "rtt ms min/avg/max/p50/p95: %s" % "/".join(_num(rtt.get(k)) for k in ("min", "avg", "max", "p50", "p95"))))
            cases.append(_case(_xattr("%s.probe" % host), p["name"], children))
        for k, v in counts.items():
            totals[k] += v
        head = "  <testsuite%s" % _attrs(name=host, timestamp=str(d.get("generated_at") or ""), errors=0, **counts)
        suites.append(head + (">\n" + "\n".join(cases) + "\n  </testsuite>" if cases else " />"))
    root = "<testsuites%s" % _attrs(name="netdiag.packetloss diagnose", errors=0, **totals)
    body = (">\n" + "\n".join(suites) + "\n</testsuites>") if suites else " />"
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + root + body + "\n"


def _indent(elem: ET.Element, level: int = 0) -> None:
    pad = "\n" + "  " * level
    if len(elem):
        if not (elem.text or "").strip():
            elem.text = pad + "  "
        child = elem
        for child in elem:
            _indent(child, level + 1)
        if not (child.tail or "").strip():
            child.tail = pad
    if level and not (elem.tail or "").strip():
        elem.tail = pad


def _finding_text(f: Dict[str, Any]) -> str:
    lines = ["[%s] %s %s: %s" % (f["severity"], f["id"], f["subject"], f["summary"]), "why: " + f["explanation"],
             "fix: " + _fix(f)]
    if f.get("explained_by"):
        lines.append("explained by: " + _explained(f))
    tables, facts = evidence_parts(f["evidence"])
    lines += ["%s: %s" % (k, v) for k, v in facts]
    for title, rows in tables:
        for c in rows:
            lines.append("%s %s: before %s after %s delta %s rate %s/s" % (
                title, c["name"], _num(c.get("before")), _num(c.get("after")), _num(c.get("delta")), _num(c.get("rate"))))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------

FLEET_FILES = ("summary.json", "summary.txt", "report.md", "report.html", "junit.xml")
TEXTFILE = "packetloss.prom"  # in a merged set (merge.py), besides FLEET_FILES


def dump_json(doc: Any) -> str:
    """Machine-read JSON: sorted keys, no indent and no padding, so that Python's C encoder writes it (an indent
    disables it, and costs two thirds of the reports' time at 20,000 targets: docs/report-scale.md)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str) + "\n"


def target_files(diagnoses: Any) -> List[Dict[str, str]]:
    """[{path, content}]: HOST/TARGET.json for every target, paths relative to the report directory."""
    out = []
    for d, label, _t in _rows(diagnoses):
        out.append({"path": "%s/%s.json" % (safe_name(d["host"]), safe_name(label)),
                    "content": dump_json(target_report(d, label))})
    return out


def fleet_files(diagnoses: Any, report_dir: Optional[str] = None, fail_severity: str = "warning",
                max_probe_loss: float = 0.0, rows: Optional[List[Dict[str, Any]]] = None) -> List[Dict[str, str]]:
    """[{path, content}] of the fleet reports (FLEET_FILES), paths relative to the report directory; ``rows``: the
    summary rows when the caller has them (summary_rows), computed once for every file."""
    ds = _diagnoses(diagnoses)
    rows = summary_rows(ds) if rows is None else rows
    return [
        {"path": "summary.json", "content": dump_json(summary(ds, report_dir, rows))},
        {"path": "summary.txt", "content": summary_table(ds, rows) + "\n"},
        {"path": "report.md", "content": markdown(ds, report_dir, rows)},
        {"path": "report.html", "content": render_html(ds, report_dir, rows)},
        {"path": "junit.xml", "content": junit(ds, fail_severity, max_probe_loss)},
    ]


def report_plan(diagnoses: Any, report_dir: Optional[str] = None, fail_severity: str = "warning", max_probe_loss: float = 0.0,
                worst: int = 20, missing: Iterable[str] = (), write: bool = True, run: Optional[Dict[str, Any]] = None,
                merged: Optional[Dict[str, Any]] = None) -> Tuple[List[Tuple[str, Callable[[], str]]], str]:
    """What the diagnose role's report task makes of the play's diagnoses (plain data): the files as (path, render)
    - [] unless ``write``; the paths and contents of target_files and fleet_files, each rendered when it is written,
    so that a fleet's reports are never all in memory at once (render them inside evidence_cache()) - and the
    console summary (console_summary). The summary rows are computed once for all of them. ``run``: the run's record,
    in summary.json and (as run_ref) in every per-target JSON; ``merged``: a merge's record (merge.py), which also
    adds the Prometheus textfile (packetloss.prom) to the files."""
    if fail_severity not in SEVERITIES:
        raise ValueError("fail_severity must be one of %s" % ", ".join(SEVERITIES))
    ds = _diagnoses(diagnoses)
    rows = summary_rows(ds)
    missing = list(missing)
    console = console_summary(ds, worst, report_dir if write else None, missing, rows)
    if not write:
        return [], console
    plan: List[Tuple[str, Callable[[], str]]] = [
        ("%s/%s.json" % (safe_name(d["host"]), safe_name(label)), functools.partial(_target_json, d, label, run))
        for d, label, _t in _rows(ds)]
    plan += [
        ("summary.json", lambda: dump_json(summary(ds, report_dir, rows, run, missing, merged))),
        ("summary.txt", lambda: summary_table(ds, rows) + "\n"),
        ("report.md", lambda: markdown(ds, report_dir, rows)),
        ("report.html", lambda: render_html(ds, report_dir, rows)),
        ("junit.xml", lambda: junit(ds, fail_severity, max_probe_loss)),
    ]
    if merged is not None:
        plan.append((TEXTFILE, functools.partial(_textfile, ds)))
    return plan, console


RESULT_SCHEMA = "netdiag.packetloss/result/v1"


def _brief(f: Dict[str, Any]) -> Dict[str, Any]:
    return dict((k, f.get(k)) for k in ("host", "target", "id", "severity", "subject", "remediation", "remediation_args"))


def workflow_result(diagnoses: Any, report_dir: Optional[str] = None, run: Optional[Dict[str, Any]] = None,
                    missing: Iterable[str] = (), severity: str = "warning", limit: int = 50) -> Dict[str, Any]:
    """The compact result a workflow branches on (the roles publish it with set_stats as packetloss_result), bounded
    whatever the fleet's size: totals, every finding id of at least ``severity`` with its count, and at most
    ``limit`` of the targets and of the findings of at least ``severity`` (worst first), of the hosts without a
    diagnosis, each with its total (docs/awx.md#the-result)."""
    if severity not in SEVERITIES:
        raise ValueError("severity must be one of %s" % ", ".join(SEVERITIES))
    n = max(0, int(limit))
    floor = severity_rank(severity)
    ds = _diagnoses(diagnoses)
    counts = dict((s, 0) for s in SEVERITIES)
    ids: Dict[str, int] = {}
    targets: List[Dict[str, Any]] = []
    findings: List[Dict[str, Any]] = []
    unread = total = 0
    for d, label, t in _rows(ds):
        total += 1
        unread += len(not_read(t.get("layers") or {}))
        for s in SEVERITIES:
            counts[s] += t["counts"][s]
        above = [f for f in t["findings"] if severity_rank(f["severity"]) >= floor]
        if not above:
            continue
        for f in above:
            ids[f["id"]] = ids.get(f["id"], 0) + 1
        targets.append({"host": d.get("host"), "target": label, "worst": t["worst"], "ids": sorted(set(f["id"] for f in above))})
        findings += [_brief(f) for f in above]
    targets.sort(key=lambda r: (-severity_rank(r["worst"]), str(r["host"]), r["target"]))
    findings.sort(key=lambda f: (-severity_rank(f["severity"]), str(f["host"]), f["target"], f["id"], f["subject"]))
    missing = sorted(str(h) for h in missing)
    return {
        "schema": RESULT_SCHEMA, "run": dict((k, (run or {}).get(k)) for k in ("id", "group", "slice", "limit")),
        "report_dir": report_dir, "report": "%s/report.html" % report_dir if report_dir else None,
        "hosts": len(ds), "targets": total, "worst": worst_severity(f for d in ds for f in d["findings"]),
        "counts": counts, "not_read": unread, "missing": missing[:n], "missing_total": len(missing),
        "severity": severity, "finding_ids": dict(sorted(ids.items())),
        "targets_above": targets[:n], "targets_above_total": len(targets),
        "findings": findings[:n], "findings_total": len(findings),
        "truncated": len(targets) > n or len(findings) > n or len(missing) > n,
    }


def _target_json(diagnosis: Dict[str, Any], label: str, run: Optional[Dict[str, Any]] = None) -> str:
    return dump_json(target_report(diagnosis, label, run))


def _textfile(ds: List[Dict[str, Any]]) -> str:
    """The Prometheus textfile of diagnoses without verdicts: the compliance gate's writer (one place for the format)."""
    from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import compliance as _compliance  # pylint: disable=import-outside-toplevel
    return _compliance.textfile(ds)


@contextlib.contextmanager
def evidence_cache() -> Iterator[None]:
    """While rendering a fleet's reports: each finding's evidence_parts computed once for the three formats (the
    diagnoses must stay alive meanwhile: the cache is by id)."""
    global _PARTS  # pylint: disable=global-statement
    _PARTS = {}
    try:
        yield
    finally:
        _PARTS = None


def report_set(diagnoses: Any, report_dir: Optional[str] = None, fail_severity: str = "warning", max_probe_loss: float = 0.0,
               worst: int = 20, missing: Iterable[str] = (), write: bool = True) -> Tuple[List[Dict[str, str]], str]:
    """report_plan, rendered: ([{path, content}], console summary)."""
    plan, console = report_plan(diagnoses, report_dir, fail_severity, max_probe_loss, worst, missing, write)
    with evidence_cache():
        return [{"path": path, "content": render()} for path, render in plan], console


__all__ = ["SCHEMA", "console_message", "target_report", "summary", "summary_rows", "summary_table",
           "markdown", "render_html", "junit", "target_files", "fleet_files", "safe_name", "evidence_parts", "console_summary",
           "dump_json", "target_order", "report_set", "report_plan", "evidence_cache", "run_ref", "workflow_result"]
