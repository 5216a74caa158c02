# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters exposing the analyzer and the report renderers to playbooks.

Each filter is documented in its sidecar file (plugins/filter/NAME.yml), as ansible-core documents its own.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional


from ansible_collections.netdiag.packetloss.plugins.plugin_utils._filters import guard as _guard
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import diagnosis as _diagnosis
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report


def _interval(value: Any) -> Optional[float]:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("interval must be a number of seconds, got %r" % (value,))


def packetloss_findings(before: Any, after: Any = None, interval: Any = None, thresholds: Optional[Dict[str, Any]] = None,
                        host: Optional[str] = None) -> List[Dict[str, Any]]:
    """Findings of every target in two packetloss_facts snapshots (see _analyze.analyze_host)."""
    return _analyze.analyze_host(before, after, _interval(interval), thresholds or None, host=host)


def packetloss_diagnosis(before: Any, after: Any = None, interval: Any = None, thresholds: Optional[Dict[str, Any]] = None,
                         host: str = "localhost", probes: Any = None) -> Dict[str, Any]:
    """One host's diagnosis: findings, coverage and probes per target (see _diagnosis.host_diagnosis)."""
    return _diagnosis.host_diagnosis(before, after, _interval(interval), thresholds or None, host=str(host), probes=probes)


def packetloss_worst(findings: Any, by: str = "layer") -> Any:
    """Worst severity per layer (or target, id, host); with by=all, the worst severity of all."""
    if by == "all":
        return _analyze.worst_severity(findings or [])
    if by not in ("layer", "target", "id", "host"):
        raise ValueError("by must be layer, target, id, host or all")
    return _analyze.worst(findings or [], by=by)


def packetloss_at_least(findings: Any, severity: str = "warning") -> List[Dict[str, Any]]:
    """The findings of at least ``severity``."""
    return _analyze.at_least(findings or [], severity)


def packetloss_thresholds(overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
    """The thresholds in effect: the defaults with ``overrides`` merged in (validated)."""
    return _analyze.merge_thresholds(overrides or None)


def packetloss_report_files(diagnoses: Any, kind: str = "all", report_dir: Optional[str] = None,
                            fail_severity: str = "warning", max_probe_loss: float = 0.0) -> List[Dict[str, str]]:
    """[{path, content}] of the reports for these diagnoses, paths relative to the report directory."""
    if kind not in ("all", "targets", "fleet"):
        raise ValueError("kind must be all, targets or fleet")
    out: List[Dict[str, str]] = []
    if kind in ("all", "targets"):
        out += _report.target_files(diagnoses)
    if kind in ("all", "fleet"):
        out += _report.fleet_files(diagnoses, report_dir, fail_severity, float(max_probe_loss))
    return out


def packetloss_summary_table(diagnoses: Any) -> str:
    """The fleet summary table: host, target, worst finding per layer, probe loss."""
    return _report.summary_table(diagnoses)


class FilterModule:
    """netdiag.packetloss filters."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        return dict((fn.__name__, _guard(fn)) for fn in (
            packetloss_findings, packetloss_diagnosis, packetloss_worst, packetloss_at_least, packetloss_thresholds,
            packetloss_report_files, packetloss_summary_table))
