# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the compliance gate: the allow-list (JMESPath expressions over the findings), a host's verdict, and
its files (JUnit XML, JSON summary, Prometheus textfile).

Each filter is documented in its sidecar file (plugins/filter/NAME.yml), as ansible-core documents its own.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Tuple


from ansible_collections.netdiag.packetloss.plugins.plugin_utils._filters import guard as _guard
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import analyze as _analyze
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import compliance as _compliance

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:
    HAS_JMESPATH = False


def _expressions(allow: Any) -> List[Tuple[str, Any]]:
    """The allow-list as [(expression text, compiled)]; entries are strings or {expression, reason}."""
    allow = _compliance.entries(allow, "the allow-list must be a list of JMESPath expressions")
    if allow and not HAS_JMESPATH:
        raise ValueError("the allow-list needs the Python library jmespath on the controller (pip install jmespath)")
    out = []
    for entry in allow:
        text = entry.get("expression") if isinstance(entry, dict) else entry
        if not isinstance(text, str) or not text.strip():
            raise ValueError("each allow-list entry must be a JMESPath expression or {expression, reason}, got %r" % (entry,))
        try:
            out.append((text, jmespath.compile(text)))
        except jmespath.exceptions.JMESPathError as exc:
            raise ValueError("invalid JMESPath expression %r: %s" % (text, exc))
    return out


def _key(f: Any) -> str:
    return json.dumps(f, sort_keys=True, default=str)


def allowed_indexes(findings: Any, allow: Any) -> Dict[int, str]:
    """{index of a finding in ``findings``: the first allow-list expression that selects it}.

    Each expression is searched over the list of findings and must give a list (or null): the findings it selects.
    """
    exprs = _expressions(allow)
    findings = [f for f in findings or [] if isinstance(f, dict)]
    if not exprs or not findings:
        return {}
    index: Dict[str, List[int]] = {}
    for i, f in enumerate(findings):
        index.setdefault(_key(f), []).append(i)
    out: Dict[int, str] = {}
    for text, compiled in exprs:
        try:
            selected = compiled.search(findings)
        except jmespath.exceptions.JMESPathError as exc:
            raise ValueError("JMESPath expression %r failed: %s" % (text, exc))
        if selected is None:
            continue
        if isinstance(selected, dict):
            selected = [selected]
        if not isinstance(selected, list):
            raise ValueError("JMESPath expression %r must select findings (a list), it gave %r" % (text, selected))
        for item in selected:
            if not isinstance(item, dict):
                raise ValueError("JMESPath expression %r must select whole findings, not %r: write a filter such as "
                                 "[?id=='qdisc.netem'] without a projection" % (text, item))
            for i in index.get(_key(item), []):
                out.setdefault(i, text)
    return out


def packetloss_allowed(findings: Any, allow: Any = None) -> List[Dict[str, Any]]:
    """The findings the allow-list selects, each with ``allowed_by`` (the first expression that selected it)."""
    findings = [f for f in findings or [] if isinstance(f, dict)]
    matched = allowed_indexes(findings, allow)
    return [dict(f, allowed_by=matched[i]) for i, f in enumerate(findings) if i in matched]


def packetloss_compliance(diagnosis: Any, allow: Any = None, fail_severity: str = "warning", max_probe_loss: Any = 0.0,
                          fail_unread: bool = True, rates: Any = None, allow_unread: Any = None) -> Dict[str, Any]:
    """One host's compliance verdict from its diagnosis (see _compliance.verdict): a layer not read in full fails
    unless ``allow_unread`` (layers, or {layer, target, reason}) allows it, or ``fail_unread`` is false."""
    if not isinstance(diagnosis, dict):
        raise ValueError("expected a host diagnosis (packetloss_diagnosis), got %s" % type(diagnosis).__name__)
    if rates is not None and not isinstance(rates, dict):
        raise ValueError("rates must be a dictionary (packetloss_key_rates)")
    allowed = allowed_indexes(diagnosis.get("findings") or [], allow)
    return _compliance.verdict(diagnosis, allowed, fail_severity, max_probe_loss, bool(fail_unread), rates, allow_unread)


def packetloss_compliance_files(verdicts: Any, diagnoses: Any = None, allow: Any = None, report_dir: Optional[str] = None,
                                hosts: Any = None) -> List[Dict[str, str]]:
    """[{path, content}]: compliance-junit.xml, compliance.json and packetloss.prom."""
    if hosts is not None and not isinstance(hosts, list):
        raise ValueError("hosts must be a list of host names")
    return _compliance.files(verdicts, diagnoses, None, [_describe(a) for a in (allow or [])], report_dir, hosts)


def _describe(entry: Any) -> Any:
    return entry if isinstance(entry, (str, dict)) else str(entry)


def packetloss_key_rates(before: Any, after: Any = None, interval: Any = None) -> Dict[str, Dict[str, float]]:
    """{target: {counter: rate per second}} of the key drop counters between two packetloss_facts snapshots."""
    seconds = float(interval) if interval not in (None, "") else None
    return _analyze.key_rates(before, after, seconds)


def packetloss_textfile(diagnoses: Any, verdicts: Any = None, rates: Any = None) -> str:
    """The findings, verdicts and key counter rates in node_exporter's textfile collector format."""
    return _compliance.textfile(diagnoses, verdicts, rates)


def packetloss_compliance_message(verdict: Any) -> str:
    """A failed host's message: every failed check, one a line."""
    if not isinstance(verdict, dict) or "checks" not in verdict:
        raise ValueError("expected a compliance verdict (packetloss_compliance)")
    return _compliance.failure_text(verdict)


class FilterModule:
    """netdiag.packetloss compliance filters."""

    def filters(self) -> Dict[str, Callable[..., Any]]:
        return dict((fn.__name__, _guard(fn)) for fn in (
            packetloss_allowed, packetloss_compliance, packetloss_compliance_files, packetloss_key_rates,
            packetloss_textfile, packetloss_compliance_message))
