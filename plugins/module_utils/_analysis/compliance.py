# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compliance gate: a host's diagnosis -> a verdict (checks per target and layer, probes), and the files CI
systems and monitoring read: JUnit XML, a JSON summary and a Prometheus textfile (node_exporter's textfile
collector format).

Pure functions, no I/O, no third-party imports: the allow-list's JMESPath expressions are evaluated by the filter
plugin (plugins/filter/compliance.py), which passes the matches in as ``allowed`` (finding index -> expression).

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import datetime
import json
import math
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import (
    LAYERS, SEVERITIES, layer_state, not_read, severity_rank, worst_severity)
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.diagnosis import now_iso
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports.report import _finding_text, _indent, _num as _fmt

SCHEMA = "netdiag.packetloss/compliance/v1"
STATUSES = ("pass", "fail", "skipped", "error")
FILES = ("compliance-junit.xml", "compliance.json", "packetloss.prom")


def _brief(f: Dict[str, Any], allowed_by: Optional[str] = None) -> Dict[str, Any]:
    out = {"id": f.get("id"), "layer": f.get("layer"), "severity": f.get("severity"), "target": f.get("target"),
           "subject": f.get("subject"), "summary": f.get("summary"), "remediation": f.get("remediation")}
    if allowed_by is not None:
        out["allowed_by"] = allowed_by
    return out


def check_options(fail_severity: str, max_probe_loss: Any) -> Tuple[str, float]:
    if fail_severity not in SEVERITIES:
        raise ValueError("fail_severity must be one of %s, got %r" % (", ".join(SEVERITIES), fail_severity))
    try:
        loss = float(max_probe_loss)
    except (TypeError, ValueError):
        raise ValueError("max_probe_loss must be a percentage, got %r" % (max_probe_loss,))
    if not 0.0 <= loss <= 100.0:
        raise ValueError("max_probe_loss must be between 0 and 100, got %r" % (max_probe_loss,))
    return fail_severity, loss


def entries(value: Any, what: str) -> List[Any]:
    """An allow-list option as a list: none (None, "") is [], one entry (a string or a dict) is a list of it; anything
    else but a list is a ValueError that says what the option (``what``) must be."""
    if value is None or value == "":
        return []
    if isinstance(value, (str, dict)):
        return [value]
    if not isinstance(value, list):
        raise ValueError("%s, got %s" % (what, type(value).__name__))
    return value


def check_allow_unread(allow_unread: Any) -> List[Dict[str, Any]]:
    """The unread-layer allow-list as [{layer, target, reason, text}]: entries are a layer name (every target), ``all``,
    or {layer, target?, reason?}; raise ValueError for anything else."""
    allow_unread = entries(allow_unread, "allow_unread must be a list of layers (or {layer, target, reason})")
    out = []
    for entry in allow_unread:
        spec = {"layer": entry} if isinstance(entry, str) else entry
        if not isinstance(spec, dict) or set(spec) - {"layer", "target", "reason"}:
            raise ValueError("each allow_unread entry must be a layer name or {layer, target, reason}, got %r" % (entry,))
        layer, target = spec.get("layer"), spec.get("target")
        if layer != "all" and layer not in LAYERS:
            raise ValueError("allow_unread: unknown layer %r (known: all, %s)" % (layer, ", ".join(LAYERS)))
        if target is not None and not isinstance(target, str):
            raise ValueError("allow_unread: target must be a target label such as host or container:NAME, got %r" % (target,))
        text = layer if target is None else "%s on %s" % (layer, target)
        out.append({"layer": layer, "target": target, "reason": spec.get("reason"), "text": text})
    return out


def _unread_allowed_by(rules: List[Dict[str, Any]], target: str, layer: str) -> Optional[str]:
    for r in rules:
        if r["layer"] in ("all", layer) and r["target"] in (None, target):
            return r["text"]
    return None


def verdict(diagnosis: Dict[str, Any], allowed: Optional[Dict[int, str]] = None, fail_severity: str = "warning",
            max_probe_loss: float = 0.0, fail_unread: bool = True,
            rates: Optional[Dict[str, Dict[str, float]]] = None, allow_unread: Any = None) -> Dict[str, Any]:
    """One host's compliance verdict from its diagnosis (``diagnosis.host_diagnosis``).

    A check per target and layer: ``fail`` when the layer has a finding of at least ``fail_severity`` that no
    allow-list expression matched (``allowed`` maps the finding's index in ``diagnosis["findings"]`` to the
    expression that allowed it); else ``fail`` too when the layer was not read in full (state unread or partial:
    fail closed) unless ``allow_unread`` (check_allow_unread) allows it there - then ``skipped`` - or ``fail_unread``
    is false (every layer allowed); ``skipped`` when the layer was not collected (left out of gather_subset);
    ``pass`` otherwise. A check per probe: ``fail`` above ``max_probe_loss`` percent or when the probe could not run.
    ``rates`` (``analyze.key_rates``) is kept in the verdict for the Prometheus textfile.
    """
    if not isinstance(diagnosis, dict) or "targets" not in diagnosis:
        raise ValueError("expected a host diagnosis (packetloss_diagnosis), got %s" % type(diagnosis).__name__)
    fail_severity, max_probe_loss = check_options(fail_severity, max_probe_loss)
    unread_rules = check_allow_unread(allow_unread)
    if not fail_unread:
        unread_rules.append({"layer": "all", "target": None, "reason": None, "text": "fail_unread: false"})
    unread: List[Dict[str, Any]] = []
    allowed = dict(allowed or {})
    findings = list(diagnosis.get("findings") or [])
    host = str(diagnosis.get("host"))
    checks: List[Dict[str, Any]] = []
    for label, t in (diagnosis.get("targets") or {}).items():
        layers = t.get("layers") or {}
        for layer in LAYERS:
            idx = [i for i, f in enumerate(findings) if f.get("target") == label and f.get("layer") == layer]
            over = [i for i in idx if severity_rank(findings[i].get("severity")) >= severity_rank(fail_severity)]
            failing = [i for i in over if i not in allowed]
            cov = layers.get(layer) or {"available": True}
            state = layer_state(cov)
            check = {"target": label, "check": layer, "status": "pass", "message": None, "read": state,
                     "failing": [findings[i] for i in failing],
                     "allowed": [dict(findings[i], allowed_by=allowed[i]) for i in idx if i in allowed],
                     "below": [findings[i] for i in idx if i not in over and i not in allowed]}
            unread_by = None
            if state != "read":
                unread_by = _unread_allowed_by(unread_rules, label, layer) if state != "not_collected" else "gather_subset"
                unread.append({"target": label, "layer": layer, "state": state, "reason": cov.get("reason"),
                               "unread": cov.get("unread") or [], "allowed_by": unread_by})
            if failing:
                check["status"] = "fail"
                check["message"] = "; ".join("%s: %s" % (findings[i]["id"], findings[i]["summary"]) for i in failing)
                if state != "read":
                    check["message"] += " (layer %s: %s)" % (_WORDS.get(state, state), cov.get("reason"))
            elif state == "not_collected":
                check["status"] = "skipped"
                check["message"] = "layer not collected: %s" % cov.get("reason")
            elif state != "read":
                check["status"] = "skipped" if unread_by else "fail"
                check["message"] = "layer %s: %s" % (_WORDS.get(state, state), cov.get("reason")) + (
                    " (allowed by allow_unread %s)" % unread_by if unread_by else
                    " - not known to be drop-free; allow it with packetloss_compliance_allow_unread: [%s]" % layer)
            checks.append(check)
    for p in diagnosis.get("probes") or []:
        check = {"target": p.get("target") or "host", "check": "probe %s" % p.get("name"), "status": "pass",
                 "message": None, "failing": [], "allowed": [], "below": [], "probe": p}
        if p.get("failed"):
            check["status"] = "fail"
            check["message"] = "probe failed: %s" % p.get("msg")
        elif (p.get("loss_percent") or 0.0) > max_probe_loss:
            check["status"] = "fail"
            check["message"] = "%s%% loss (%s of %s answered) to %s, above %s%%" % (
                _fmt(p.get("loss_percent")), p.get("answered"), p.get("sent"), p.get("name"), _fmt(max_probe_loss))
        checks.append(check)
    failed = [c for c in checks if c["status"] == "fail"]
    return {
        "host": host,
        "compliant": not failed,
        "fail_severity": fail_severity,
        "max_probe_loss": max_probe_loss,
        "generated_at": diagnosis.get("generated_at"),
        "interval": diagnosis.get("interval"),
        "counts": dict((s, sum(1 for c in checks if c["status"] == s)) for s in STATUSES),
        "failing": [f for c in failed for f in c["failing"]],
        "allowed": [f for c in checks for f in c["allowed"]],
        "checks": checks,
        "message": "; ".join("%s %s: %s" % (c["target"], c["check"], c["message"]) for c in failed),
        "unread": unread,
        "rates": dict(rates or {}),
    }


_WORDS = {"unread": "not read", "partial": "read in part", "not_collected": "not collected"}


def missing_verdict(host: str, reason: str = "no diagnosis: the host was unreachable or failed") -> Dict[str, Any]:
    """The verdict of a host that has no diagnosis: not compliant, one ``error`` check."""
    check = {"target": "host", "check": "diagnosis", "status": "error", "message": reason, "failing": [],
             "allowed": [], "below": []}
    return {"host": str(host), "compliant": False, "fail_severity": None, "max_probe_loss": None, "generated_at": None,
            "interval": None, "counts": dict((s, int(s == "error")) for s in STATUSES), "failing": [], "allowed": [],
            "checks": [check], "message": "host diagnosis: %s" % reason, "unread": [], "rates": {}}


def _verdicts(verdicts: Any, hosts: Optional[List[Any]] = None) -> List[Dict[str, Any]]:
    """The verdicts sorted by host; with ``hosts``, a missing_verdict for each host that has none."""
    if isinstance(verdicts, dict):
        verdicts = [verdicts] if "checks" in verdicts else list(verdicts.values())
    out = [v for v in verdicts or [] if isinstance(v, dict) and "checks" in v]
    seen = set(str(v.get("host")) for v in out)
    for h in hosts or []:
        if str(h) not in seen:
            seen.add(str(h))
            out.append(missing_verdict(str(h)))
    return sorted(out, key=lambda v: str(v.get("host")))


# ------------------------------------------------------------------------------------------------
# JUnit XML and the JSON summary
# ------------------------------------------------------------------------------------------------


def junit(verdicts: Any) -> str:
    """``<testsuites>``: a ``<testsuite name=HOST>`` per host, a ``<testcase classname="HOST.TARGET" name=CHECK>`` per
    check; a failing check has a ``<failure type=SEVERITY message="id: summary; ...">`` whose text is the evidence."""
    vs = _verdicts(verdicts)
    root = ET.Element("testsuites", name="netdiag.packetloss compliance")
    totals = {"tests": 0, "failures": 0, "skipped": 0, "errors": 0}
    for v in vs:
        host = str(v["host"])
        suite = ET.SubElement(root, "testsuite", name=host, timestamp=str(v.get("generated_at") or ""))
        counts = {"tests": 0, "failures": 0, "skipped": 0, "errors": 0}
        for c in v["checks"]:
            case = ET.SubElement(suite, "testcase", classname="%s.%s" % (host, c["target"]), name=c["check"])
            counts["tests"] += 1
            if c["status"] == "fail":
                counts["failures"] += 1
                if c["failing"]:
                    failure = ET.SubElement(case, "failure", type=worst_severity(c["failing"]) or "",
                                            message=c["message"] or "")
                    failure.text = "\n\n".join(_finding_text(f) for f in c["failing"])
                elif "probe" in c:
                    failure = ET.SubElement(case, "failure", type="probe", message=c["message"] or "")
                    rtt = c["probe"].get("rtt_ms") or {}
                    failure.text = "rtt ms min/avg/max/p50/p95: %s" % "/".join(
                        _fmt(rtt.get(k)) for k in ("min", "avg", "max", "p50", "p95"))
                else:
                    ET.SubElement(case, "failure", type=c.get("read") or "unread", message=c["message"] or "")
            elif c["status"] == "error":
                counts["errors"] += 1
                ET.SubElement(case, "error", type="diagnosis", message=c["message"] or "")
            elif c["status"] == "skipped":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=c["message"] or "")
            out = ["[allowed by %s] %s" % (f["allowed_by"], _finding_text(f)) for f in c["allowed"]]
            out += [_finding_text(f) for f in c["below"]]
            if out:
                ET.SubElement(case, "system-out").text = "\n\n".join(out)
        for k, n in counts.items():
            suite.set(k, str(n))
            totals[k] += n
    for k, n in totals.items():
        root.set(k, str(n))
    _indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def summary(verdicts: Any, allow: Optional[List[Any]] = None, report_dir: Optional[str] = None,
            generated_at: Optional[str] = None) -> Dict[str, Any]:
    """The JSON summary: overall result, failed hosts, and per host its failing and allowed findings."""
    vs = _verdicts(verdicts)
    hosts = []
    for v in vs:
        hosts.append({
            "host": v["host"], "compliant": v["compliant"], "counts": v["counts"],
            "failed_checks": [{"target": c["target"], "check": c["check"], "status": c["status"], "message": c["message"]}
                              for c in v["checks"] if c["status"] in ("fail", "error")],
            "failing": [_brief(f) for f in v["failing"]],
            "allowed": [_brief(f, f.get("allowed_by")) for f in v["allowed"]],
            "not_read": [dict((k, u.get(k)) for k in ("target", "layer", "state", "reason", "allowed_by"))
                         for u in v.get("unread") or []],
        })
    failed = [v["host"] for v in vs if not v["compliant"]]
    return {
        "schema": SCHEMA,
        "generated_at": generated_at or next((v.get("generated_at") for v in vs if v.get("generated_at")), None) or now_iso(),
        "compliant": not failed,
        "hosts": len(vs),
        "failed_hosts": failed,
        "passed_hosts": [v["host"] for v in vs if v["compliant"]],
        "fail_severity": next((v["fail_severity"] for v in vs if v.get("fail_severity")), None),
        "max_probe_loss": next((v["max_probe_loss"] for v in vs if v.get("max_probe_loss") is not None), None),
        "allow": list(allow or []),
        "checks": dict((s, sum(v["counts"][s] for v in vs)) for s in STATUSES),
        "report_dir": report_dir,
        "results": hosts,
    }


# ------------------------------------------------------------------------------------------------
# Prometheus textfile (node_exporter textfile collector)
# ------------------------------------------------------------------------------------------------

def _label_value(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kw: Any) -> str:
    return "{%s}" % ",".join('%s="%s"' % (k, _label_value(v)) for k, v in kw.items())


def _value(v: float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    return repr(float(v))


METRICS = (
    ("packetloss_finding", "gauge",
     "Findings of the packet-loss diagnosis per host, target, finding id and severity (1, or how many findings of "
     "that id and severity the target has)."),
    ("packetloss_counter_rate_per_second", "gauge",
     "Rate of a key drop counter over the diagnosis interval, per host and target."),
    ("packetloss_target_worst_severity", "gauge",
     "Worst finding severity of a target: 0 none, 1 info, 2 warning, 3 critical (see packetloss_layer_not_read: "
     "0 is clean only where every layer was read)."),
    ("packetloss_layer_not_read", "gauge",
     "1 for each layer of a target that was not read in full (state unread, partial or not_collected): not known to "
     "be clean."),
    ("packetloss_host_compliant", "gauge", "1 when the host passed the compliance gate, 0 when it failed."),
    ("packetloss_host_failed_checks", "gauge", "Failed compliance checks (target x layer, probes) of the host."),
    ("packetloss_host_allowed_findings", "gauge", "Findings of the host the compliance allow-list accepted."),
    ("packetloss_diagnosis_interval_seconds", "gauge", "Seconds between the diagnosis' two snapshots of the host."),
    ("packetloss_diagnosis_timestamp_seconds", "gauge", "When the host's diagnosis was made (Unix time)."),
)


def _timestamp(iso: Any) -> Optional[float]:
    if not iso:
        return None
    try:
        return datetime.datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return None


def textfile(diagnoses: Any, verdicts: Any = None, rates: Optional[Dict[str, Dict[str, Dict[str, float]]]] = None) -> str:
    """The findings (and the verdicts and key counter rates when given) in the Prometheus text exposition format,
    for node_exporter's textfile collector. ``rates`` is ``{host: analyze.key_rates(...)}``."""
    if isinstance(diagnoses, dict):
        diagnoses = [diagnoses] if "targets" in diagnoses else list(diagnoses.values())
    ds = sorted((d for d in diagnoses or [] if isinstance(d, dict) and "targets" in d), key=lambda d: str(d.get("host")))
    vs = dict((str(v["host"]), v) for v in _verdicts(verdicts))
    series: Dict[str, List[str]] = dict((name, []) for name, _t, _h in METRICS)
    for d in ds:
        host = str(d.get("host"))
        groups: Dict[Tuple[str, str, str, str], int] = {}
        for f in d.get("findings") or []:
            key = (str(f.get("target")), str(f.get("id")), str(f.get("layer")), str(f.get("severity")))
            groups[key] = groups.get(key, 0) + 1
        for (target, fid, layer, sev), n in sorted(groups.items()):
            series["packetloss_finding"].append("packetloss_finding%s %d" % (
                _labels(host=host, target=target, id=fid, layer=layer, severity=sev), n))
        for label, t in (d.get("targets") or {}).items():
            series["packetloss_target_worst_severity"].append("packetloss_target_worst_severity%s %d" % (
                _labels(host=host, target=label), severity_rank(t.get("worst")) + 1))
            layers = t.get("layers") or {}
            for layer in not_read(layers):
                series["packetloss_layer_not_read"].append("packetloss_layer_not_read%s 1" % _labels(
                    host=host, target=label, layer=layer, state=layer_state(layers.get(layer) or {})))
        host_rates = (rates or {}).get(host) if rates else (vs.get(host) or {}).get("rates")
        for label, counters in sorted((host_rates or {}).items()):
            for name, rate in sorted(counters.items()):
                series["packetloss_counter_rate_per_second"].append("packetloss_counter_rate_per_second%s %s" % (
                    _labels(host=host, target=label, counter=name), _value(rate)))
        if d.get("interval") is not None:
            series["packetloss_diagnosis_interval_seconds"].append("packetloss_diagnosis_interval_seconds%s %s" % (
                _labels(host=host), _value(float(d["interval"]))))
        ts = _timestamp(d.get("generated_at"))
        if ts is not None:
            series["packetloss_diagnosis_timestamp_seconds"].append("packetloss_diagnosis_timestamp_seconds%s %s" % (
                _labels(host=host), _value(ts)))
    for host, v in sorted(vs.items()):
        series["packetloss_host_compliant"].append("packetloss_host_compliant%s %d" % (_labels(host=host), int(v["compliant"])))
        series["packetloss_host_failed_checks"].append("packetloss_host_failed_checks%s %d" % (
            _labels(host=host), v["counts"].get("fail", 0) + v["counts"].get("error", 0)))
        series["packetloss_host_allowed_findings"].append("packetloss_host_allowed_findings%s %d" % (
            _labels(host=host), len(v["allowed"])))
    out: List[str] = []
    for name, kind, text in METRICS:
        if name == "packetloss_finding" or series[name]:  # the finding metric is always declared
            out.append("# HELP %s %s" % (name, text.replace("\\", "\\\\").replace("\n", " ")))
            out.append("# TYPE %s %s" % (name, kind))
            out.extend(series[name])
    return "\n".join(out) + "\n"


def files(verdicts: Any, diagnoses: Any = None, rates: Any = None, allow: Optional[List[Any]] = None,
          report_dir: Optional[str] = None, hosts: Optional[List[Any]] = None) -> List[Dict[str, str]]:
    """[{path, content}] of FILES, paths relative to the report directory; ``hosts`` (every host of the play) adds
    an error verdict for each host without one (unreachable, or failed before its verdict)."""
    verdicts = _verdicts(verdicts, hosts)
    return [
        {"path": "compliance-junit.xml", "content": junit(verdicts)},
        {"path": "compliance.json",
         "content": json.dumps(summary(verdicts, allow, report_dir), indent=2, sort_keys=True, default=str) + "\n"},
        {"path": "packetloss.prom", "content": textfile(diagnoses or [], verdicts, rates)},
    ]


def failure_text(v: Dict[str, Any]) -> str:
    """A failed host's message for the play: every failed check, one a line."""
    lines = ["%s is not drop-free (%d failed check(s)):" % (v["host"], v["counts"].get("fail", 0) + v["counts"].get("error", 0))]
    for c in v["checks"]:
        if c["status"] in ("fail", "error"):
            lines.append("  %s %s: %s" % (c["target"], c["check"], c["message"]))
    return "\n".join(lines)


__all__ = ["SCHEMA", "FILES", "verdict", "check_allow_unread", "missing_verdict", "junit", "summary", "textfile",
           "files", "failure_text", "check_options"]
