# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagnosis of one host: its findings (analyze), what was read per target and layer, and its probes - the one
structure every report (_reports) and the compliance gate read (docs/report-schema.md).

Pure functions, no I/O. This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional

from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.analyze import (
    LAYERS, SEVERITIES, analyze_host, host_causes, interval_of, layer_coverage, layer_state, not_read, severity_rank,
    probe_syn_acks, targets_of, worst_severity)


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def normalize_probes(results: Any) -> List[Dict[str, Any]]:
    """Probe results -> [{name, target, host, port, mode, sent, answered, lost, loss_percent, rtt_ms, failed, msg}].

    Takes what a looped ``netdiag.packetloss.probe`` task registers (``{"results": [...]}``, each with the loop
    ``item``: {host, port, mode?, count?, target?, name?}), that list, or plain probe results.
    """
    if isinstance(results, dict):
        results = results.get("results", [results])
    out = []
    for r in results or []:
        if not isinstance(r, dict) or r.get("skipped"):
            continue
        spec = r.get("item") if isinstance(r.get("item"), dict) else {}
        host, port = spec.get("host", r.get("host")), spec.get("port", r.get("port"))
        mode = spec.get("mode", r.get("mode")) or "connect"
        failed = bool(r.get("failed")) or "sent" not in r  # failed_when: false keeps the msg, not the flag
        out.append({
            "name": spec.get("name") or "%s:%s %s" % (host, port, mode),
            "target": spec.get("target") or "host",
            "host": host, "port": port, "mode": mode, "address": r.get("address"),
            "sent": r.get("sent"), "answered": r.get("answered"), "lost": r.get("lost"),
            "loss_percent": r.get("loss_percent"), "rtt_ms": r.get("rtt_ms"),
            "failed": failed, "msg": r.get("msg") if failed else None, "on_target": bool(r.get("on_target")),
        })
    return out


def _counts(findings: List[Dict[str, Any]]) -> Dict[str, int]:
    return dict((s, sum(1 for f in findings if f["severity"] == s)) for s in SEVERITIES)


def _worst_by_layer(findings: List[Dict[str, Any]], coverage: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Per layer: {severity, id, subject, count, read} of its worst finding.

    severity None: clean (only when the layer was read in full), "n/a": not read (no finding, and the layer
    unread or not collected); ``read`` is the layer's state (read, partial, unread, not_collected).
    """
    out: Dict[str, Dict[str, Any]] = {}
    for layer in LAYERS:
        fs = [f for f in findings if f["layer"] == layer]
        state = layer_state(coverage.get(layer))
        if not fs:
            out[layer] = {"severity": "n/a" if state in ("unread", "not_collected") else None, "id": None, "subject": None,
                          "count": 0, "read": state}
            continue
        top = max(fs, key=lambda f: severity_rank(f["severity"]))  # first of the worst: findings come sorted
        out[layer] = {"severity": top["severity"], "id": top["id"], "subject": top["subject"],
                      "count": sum(1 for f in fs if f["id"] == top["id"] and f["severity"] == top["severity"]),
                      "findings": len(fs), "read": state}
    return out


def unread_rows(diagnosis: Dict[str, Any]) -> List[Dict[str, Any]]:
    """[{target, layer, state, reason, unread}] of every layer of the host not read in full."""
    out = []
    for label, t in (diagnosis.get("targets") or {}).items():
        for layer in not_read(t.get("layers") or {}):
            cov = t["layers"].get(layer) or {}
            out.append({"target": label, "layer": layer, "state": layer_state(cov), "reason": cov.get("reason"),
                        "unread": cov.get("unread") or []})
    return out


def host_diagnosis(before: Any, after: Any = None, interval: Optional[float] = None,
                   thresholds: Optional[Dict[str, Any]] = None, host: str = "localhost", probes: Any = None,
                   generated_at: Optional[str] = None) -> Dict[str, Any]:
    """Everything the reports need about one host, from its two packetloss_facts snapshots and its probes."""
    before_t, after_t = targets_of(before), targets_of(after)
    probe_rows = normalize_probes(probes)
    findings = analyze_host(before_t, after_t, interval, thresholds, host=host, probe_answers=probe_syn_acks(probe_rows))
    labels = list(before_t) + [l for l in after_t if l not in before_t]
    labels.sort(key=lambda l: (l != "host", l))
    targets: Dict[str, Dict[str, Any]] = {}
    for label in labels:
        b, a = before_t.get(label), after_t.get(label)
        facts = a or b or {}
        tf = [f for f in findings if f["target"] == label]
        coverage = layer_coverage(facts, b if a is not None and b is not None and after_t else None)
        warnings = sorted(set((b or {}).get("warnings") or []) | set((a or {}).get("warnings") or []))
        targets[label] = {
            "target": facts.get("target") or {"label": label},
            "snapshots": {"before": (b or {}).get("collected_at"), "after": (a or {}).get("collected_at") if b else None},
            "interval": interval_of(b, a, interval) if b is not None else None,
            "layers": coverage,
            "warnings": warnings,
            "worst": worst_severity(tf),
            "worst_by_layer": _worst_by_layer(tf, coverage),
            "counts": _counts(tf),
            "findings": tf,
            "probes": [p for p in probe_rows if p["target"] == label],
        }
    return assemble(host, generated_at or now_iso(), targets, findings, probe_rows)


def assemble(host: str, generated_at: Optional[str], targets: Dict[str, Dict[str, Any]], findings: List[Dict[str, Any]],
             probes: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A host's diagnosis from its targets (label -> the per-target fields), all its findings (sorted) and probes:
    what host_diagnosis makes of the snapshots, and what a report set is read back into (_reports/merge.py)."""
    out = {
        "host": host,
        "generated_at": generated_at,
        "interval": next((t["interval"] for t in targets.values() if t.get("interval")), None),
        "worst": worst_severity(findings),
        "counts": _counts(findings),
        "targets": targets,
        "findings": findings,
        "causes": host_causes(findings),
        "probes": probes,
        "unmatched_probes": [p for p in probes if p.get("target") not in targets],
    }
    out["unread"] = unread_rows(out)
    return out


__all__ = ["host_diagnosis", "assemble", "normalize_probes", "unread_rows", "now_iso"]
