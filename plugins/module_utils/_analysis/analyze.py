# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The analyzer: two fact snapshots of a target (or of every target of a host) -> findings.

Pure functions, no I/O. Counters are cumulative since boot (or since the object was created), so
every counter finding comes from the *delta* between the two snapshots and its *rate* over the
interval; the totals are only shown as context. Configuration findings (a netem qdisc, a random-drop
rule, a conntrack table near its limit) need one snapshot only.

A finding is a dict (docs/report-schema.md documents it field by field)::

    {"id": "netfilter.random_drop", "layer": "netfilter", "severity": "critical",
     "kind": "config" | "counter" | "gauge" | "symptom",
     "target": "container:nginx", "subject": "ipv4 filter INPUT #1 (nft)",
     "summary": one line, "explanation": why this loses packets,
     "evidence": {"interval": s, "counters": [{"name", "before", "after", "delta", "rate"}], ...},
     "remediation": "random_drop" | "netem" | None, "remediation_args": {...} | None,
     "advice": text for a human, "explained_by": [{"id", "target", "subject", "severity"}]}

Every threshold is in THRESHOLDS below, the one documented place; ``merge_thresholds`` applies a
user's overrides (per finding id, or per layer for all of its ids).

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import copy
import math
import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.text import fmt_num
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netfilter as _netfilter
from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis.terms import (  # also names of this module, for its callers
    FACT_LAYER, LAYERS, SEVERITIES, netem_qdisc, random_drop_rule, severity_rank)


# ------------------------------------------------------------------------------------------------
# THRESHOLDS: the one place (docs/severity.md renders this table: thresholds_markdown()). Keys per finding id:
#   enabled           false drops the finding altogether
#   severity          forces the severity (info, warning, critical); null = computed as below
#   min_delta         counter findings: a delta below this over the interval is no finding at all
#   warning_min_events / critical_min_events   counter findings: the events (delta) a level needs at least,
#                     whatever the rate or share: no finding is above info on the strength of one or two events
#   warning_rate      counter findings: events per second at or above which the finding is a warning ...
#   warning_percent   ... and, when set, the share (%) of the object's traffic it must also reach: the share
#                     compared is the LOWER BOUND of Wilson's score interval (z = WILSON_Z) of events out of the
#                     traffic they are a share of, so a share of a tiny sample never decides a severity
#   critical_rate / critical_percent   the same for critical. A level whose rate and percent are
#                     both null is never reached; a finding that passes min_delta only is "info".
#   warning_usage / critical_usage     conntrack.limit: table usage (%) for each level
#   explained_max_severity             symptoms: the highest severity left to a symptom explained by a
#                     cause of at least "warning" on the same host (the cause carries the severity)
# Config findings (qdisc.netem, netfilter.random_drop) have their severity by nature: see the
# finding's documentation in docs/diagnose.md; "severity" overrides it.
# ------------------------------------------------------------------------------------------------

# z of Wilson's score interval: 1.96 is the two-sided 95 % interval, so a share's lower bound is exceeded by the
# true share with 97.5 % confidence. 1 event out of 1 gives 20.7 %, 3 of 3 43.8 %, 30 of 30 88.6 %, 5 of 100 2.2 %.
WILSON_Z = 1.96
# the fewest events for each level, by default (a finding id's warning_min_events / critical_min_events override)
MIN_EVENTS = {"warning": 3, "critical": 10}


def _counter(min_delta: int = 1, warning_rate: Optional[float] = 0.0, critical_rate: Optional[float] = None,
             warning_percent: Optional[float] = None, critical_percent: Optional[float] = None,
             warning_min_events: int = MIN_EVENTS["warning"], critical_min_events: int = MIN_EVENTS["critical"]) -> Dict[str, Any]:
    return {"enabled": True, "severity": None, "min_delta": min_delta,
            "warning_min_events": warning_min_events, "warning_rate": warning_rate, "warning_percent": warning_percent,
            "critical_min_events": critical_min_events, "critical_rate": critical_rate, "critical_percent": critical_percent}


def _symptom(**kw: Any) -> Dict[str, Any]:
    out = _counter(**kw)
    out["explained_max_severity"] = "info"
    return out


THRESHOLDS: Dict[str, Dict[str, Any]] = {
    # qdisc
    "qdisc.netem": {"enabled": True, "severity": None},
    "qdisc.drops": _counter(critical_rate=10.0, critical_percent=1.0),
    # netfilter
    "netfilter.random_drop": {"enabled": True, "severity": None},
    "netfilter.drop_hits": _counter(),
    # conntrack
    "conntrack.limit": {"enabled": True, "severity": None, "warning_usage": 80.0, "critical_usage": 95.0},
    "conntrack.drop": _counter(critical_rate=0.0),
    "conntrack.early_drop": _counter(critical_rate=10.0),
    "conntrack.insert_failed": _counter(critical_rate=10.0),
    # nic: rx_dropped and tx_dropped also count benign drops (frames of unknown protocols, a bridge
    # without ports), so a slow trickle stays info
    "nic.rx_dropped": _counter(warning_rate=1.0, critical_rate=100.0, critical_percent=1.0),
    "nic.rx_fifo": _counter(critical_rate=10.0),
    "nic.rx_missed": _counter(critical_rate=10.0),
    "nic.rx_errors": _counter(critical_rate=10.0),
    "nic.tx_dropped": _counter(warning_rate=1.0, critical_rate=100.0, critical_percent=1.0),
    "nic.tx_errors": _counter(critical_rate=10.0),
    "nic.driver_drops": _counter(critical_rate=10.0),
    # softnet (per CPU, global to the host)
    "softnet.dropped": _counter(critical_rate=10.0),
    "softnet.time_squeeze": _counter(warning_rate=10.0),
    # tcp: a cause ...
    "tcp.listen_overflow": _counter(critical_rate=10.0),
    # ... and symptoms of a cause elsewhere (percent: of SYNs, segments or connection attempts)
    "tcp.syn_retrans": _symptom(warning_percent=5.0, critical_rate=0.0, critical_percent=20.0),
    "tcp.timeouts": _symptom(warning_percent=1.0, critical_rate=0.0, critical_percent=10.0),
    "tcp.retrans": _symptom(min_delta=3, warning_percent=2.0, critical_rate=0.0, critical_percent=10.0),
    "tcp.attempt_fails": _symptom(warning_percent=20.0),
    "tcp.embryonic_rsts": _symptom(warning_rate=5.0),
    # udp
    "udp.rcvbuf_errors": _counter(critical_rate=10.0),
    "udp.sndbuf_errors": _counter(critical_rate=10.0),
    "udp.in_errors": _counter(critical_rate=10.0),
    # ip
    "ip.in_no_routes": _counter(critical_rate=10.0),
    "ip.out_no_routes": _counter(critical_rate=10.0),
    "ip.frag_fails": _counter(critical_rate=10.0),
    "ip.reasm_fails": _counter(critical_rate=10.0),
    "ip.rp_filter": _counter(critical_rate=10.0),
    # socket
    "socket.tcp_backlog_drop": _counter(critical_rate=10.0),
    "socket.tcp_rcvq_drop": _counter(critical_rate=10.0),
    "socket.tcp_pruned": _counter(critical_rate=10.0),
    # drop counters with no finding of their own before (counters.COUNTER_MAP maps every counter name)
    "ip.header_errors": _counter(critical_rate=10.0),
    # a symptom that a clean container shows now and then (a few IPv6 discards a minute): a warning only at a rate
    "ip.discards": _symptom(warning_rate=10.0),
    "ip.icmp_errors": _counter(warning_rate=1.0),
    "tcp.in_errors": _counter(critical_rate=10.0),
    "tcp.in_drops": _counter(warning_rate=1.0, critical_rate=10.0),
    # drop reasons (the drop_reasons fact layer: skb:kfree_skb over the interval, per host; reasons.DROP_REASON_FINDINGS)
    "netfilter.drop_reason": _counter(),
    "qdisc.drop_reason": _counter(critical_rate=10.0),
    "nic.drop_reason": _counter(critical_rate=10.0),
    "softnet.drop_reason": _counter(critical_rate=10.0),
    "ip.drop_reason": _counter(critical_rate=10.0),
    "tcp.drop_reason": _counter(critical_rate=10.0),
    "udp.drop_reason": _counter(critical_rate=10.0),
    "socket.drop_reason": _counter(critical_rate=10.0),
    # a closed port: scans and stale clients reach one all the time, so never above warning
    "socket.no_listener": _counter(warning_rate=1.0),
    # drop events that no finding explains (and events the recording lost), never silently left out
    "drops.unexplained": _counter(warning_rate=1.0),
    # drop events that are not network loss (reasons.DROP_REASON_NOISE): counted, never above info
    "drops.noise": _counter(warning_rate=None),
}

FINDING_IDS = tuple(THRESHOLDS)
# causes of loss a symptom can be explained by (the first two always; the others from "warning" up); the kernel's
# drop reasons of real loss are causes too (a reason names the code that dropped). Not socket.no_listener (closed
# ports see scans all the time: it would cap a real symptom) nor drops.* (unexplained is what nothing explains).
CAUSES = ("netfilter.random_drop", "qdisc.netem", "netfilter.drop_hits", "qdisc.drops", "conntrack.limit",
          "conntrack.drop", "conntrack.early_drop", "conntrack.insert_failed", "nic.rx_dropped", "nic.rx_fifo",
          "nic.rx_missed", "nic.rx_errors", "nic.tx_dropped", "nic.tx_errors", "nic.driver_drops", "softnet.dropped",
          "tcp.listen_overflow", "udp.rcvbuf_errors", "udp.sndbuf_errors", "socket.tcp_backlog_drop", "socket.tcp_rcvq_drop",
          "socket.tcp_pruned", "ip.rp_filter", "ip.in_no_routes",
          "netfilter.drop_reason", "qdisc.drop_reason", "softnet.drop_reason", "nic.drop_reason", "ip.drop_reason",
          "tcp.drop_reason", "udp.drop_reason", "socket.drop_reason")
SYMPTOMS = ("tcp.syn_retrans", "tcp.timeouts", "tcp.retrans", "tcp.attempt_fails", "tcp.embryonic_rsts", "ip.discards")
_NUMERIC_KEYS = ("min_delta", "warning_min_events", "critical_min_events", "warning_rate", "warning_percent",
                 "critical_rate", "critical_percent", "warning_usage", "critical_usage")


def layer_of(finding_id: str) -> str:
    return finding_id.split(".", 1)[0]


def merge_thresholds(overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
    """THRESHOLDS with ``overrides`` applied: ``{finding id or layer: {key: value}}``.

    A layer name (``tcp``) applies to every id of that layer that has the key; an id applies to
    itself and wins over its layer. Unknown ids, layers or keys and bad values raise ValueError.
    """
    merged = copy.deepcopy(THRESHOLDS)
    if not overrides:
        return merged
    if not isinstance(overrides, dict):
        raise ValueError("thresholds must be a dict of {finding id or layer: {setting: value}}")
    layer_first = sorted(overrides.items(), key=lambda kv: 0 if kv[0] in LAYERS else 1)
    for name, settings in layer_first:
        if not isinstance(settings, dict):
            raise ValueError("thresholds[%s] must be a dict, got %r" % (name, settings))
        if name in LAYERS:
            ids = [i for i in FINDING_IDS if layer_of(i) == name]
            strict = False
        elif name in merged:
            ids = [name]
            strict = True
        else:
            raise ValueError("unknown finding id or layer %r in thresholds (known: %s)" % (name, ", ".join(FINDING_IDS)))
        for key, value in settings.items():
            _check_setting(name, key, value)
            applied = False
            for fid in ids:
                if key in merged[fid]:
                    merged[fid][key] = value
                    applied = True
                elif strict:
                    raise ValueError("thresholds[%s]: unknown setting %r (known: %s)" % (name, key, ", ".join(sorted(merged[fid]))))
            if not applied:
                raise ValueError("thresholds[%s]: no finding of this layer has a setting %r" % (name, key))
    return merged


def _check_setting(name: str, key: str, value: Any) -> None:
    if key == "enabled":
        if not isinstance(value, bool):
            raise ValueError("thresholds[%s].enabled must be true or false" % name)
    elif key in ("severity", "explained_max_severity"):
        if value is not None and value not in SEVERITIES:
            raise ValueError("thresholds[%s].%s must be one of %s or null" % (name, key, ", ".join(SEVERITIES)))
    elif key in _NUMERIC_KEYS:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError("thresholds[%s].%s must be a number >= 0 or null" % (name, key))


def _cell_value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v.is_integer():
        return "%d" % v
    return str(v)


def thresholds_markdown(thresholds: Optional[Dict[str, Dict[str, Any]]] = None) -> str:
    """THRESHOLDS (or merged ones) as the Markdown table docs/severity.md shows (a unit test keeps them equal)."""
    th = thresholds or THRESHOLDS
    lines = ["| finding id | kind | min delta | warning: events / rate /s / share % | critical: events / rate /s / share % "
             "| other |", "|---|---|---|---|---|---|"]
    for fid, t in th.items():
        if "min_delta" in t:
            kind = "symptom" if fid in SYMPTOMS else "counter"
            levels = []
            for level in ("warning", "critical"):
                rate, pct = t.get(level + "_rate"), t.get(level + "_percent")
                if rate is None and pct is None:
                    levels.append("never")
                else:
                    want_rate = "-" if rate is None else ">= " + _cell_value(rate)
                    want_pct = "-" if pct is None else ">= " + _cell_value(pct)
                    levels.append("%s / %s / %s" % (_cell_value(t.get(level + "_min_events")), want_rate, want_pct))
            other = "explained: at most %s" % t["explained_max_severity"] if t.get("explained_max_severity") else ""
            lines.append("| `%s` | %s | %s | %s | %s | %s |" % (fid, kind, _cell_value(t["min_delta"]), levels[0], levels[1], other))
        elif "warning_usage" in t:
            lines.append("| `%s` | gauge | - | usage >= %s %% | usage >= %s %% | |" % (
                fid, _cell_value(t["warning_usage"]), _cell_value(t["critical_usage"])))
        else:
            lines.append("| `%s` | config | - | by nature | by nature | |" % fid)
    lines.append("")
    defaults = (_cell_value(WILSON_Z), MIN_EVENTS["warning"], MIN_EVENTS["critical"])
    lines.append("Shares are compared by the lower bound of Wilson's score interval, z = %s; a level needs at least its "
                 "events (default %d for warning, %d for critical)." % defaults)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _get(d: Any, *path: Any) -> Any:
    for p in path:
        if isinstance(d, dict):
            d = d.get(p)
        elif isinstance(d, list) and isinstance(p, int) and -len(d) <= p < len(d):
            d = d[p]
        else:
            return None
    return d


def _list(v: Any) -> List[Any]:
    return v if isinstance(v, list) else []


def _dict(v: Any) -> Dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _int(v: Any) -> Optional[int]:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    return None


def _layer(facts: Optional[Dict[str, Any]], name: str) -> Optional[Dict[str, Any]]:
    layer = _get(facts, name)
    if isinstance(layer, dict) and layer.get("available", True):
        return layer
    return None


def _delta(before: Optional[int], after: Optional[int]) -> Optional[int]:
    if before is None or after is None:
        return None
    if after < before:  # the counter was reset (object re-created, module reloaded): count from zero
        return after
    return after - before


def _rate(delta: Optional[int], seconds: Optional[float]) -> Optional[float]:
    if delta is None or not seconds:
        return None
    return round(delta / seconds, 3)


def counter(name: str, before: Optional[int], after: Optional[int], seconds: Optional[float]) -> Dict[str, Any]:
    """One evidence counter: before, after, delta, rate (delta and rate None without a second snapshot)."""
    delta = _delta(before, after)
    return {"name": name, "before": before, "after": after, "delta": delta, "rate": _rate(delta, seconds)}


def wilson_lower(events: int, population: int, z: float = WILSON_Z) -> Optional[float]:
    """The lower bound of Wilson's score interval of the share ``events`` / ``population``, in [0, 1].

    None for an empty population: no share at all.
    """
    if population <= 0:
        return None
    events = min(max(events, 0), population)
    p = float(events) / population
    z2 = z * z
    centre = p + z2 / (2.0 * population)
    margin = z * math.sqrt(p * (1.0 - p) / population + z2 / (4.0 * population * population))
    return min(1.0, max(0.0, (centre - margin) / (1.0 + z2 / population)))


def share(events: Optional[int], traffic: Optional[int], includes_events: bool = True) -> Dict[str, Any]:
    """``events`` as a share of the traffic they belong to: {population, percent, percent_lower}.

    ``traffic`` is the denominator counter's delta; ``includes_events`` says whether it counts the events too
    (Tcp.ActiveOpens counts the attempts that failed) or not (rx_packets does not count the dropped packets): the
    population is then ``traffic + events``. A population below the events (a counter that counts them elsewhere)
    is raised to the events. ``percent`` is the point estimate (never above 100), ``percent_lower`` the lower bound
    of Wilson's score interval, which severities are decided on; all None without events or traffic, and the
    shares None over an empty population.
    """
    if events is None or traffic is None or events < 0 or traffic < 0:
        return {"population": None, "percent": None, "percent_lower": None}
    population = max(traffic if includes_events else traffic + events, events)
    lower = wilson_lower(events, population)
    if lower is None:
        return {"population": population, "percent": None, "percent_lower": None}
    return {"population": population, "percent": round(100.0 * events / population, 2),
            "percent_lower": round(100.0 * lower, 2)}


def grade(th: Dict[str, Any], delta: Optional[int], rate: Optional[float], percent: Optional[float] = None) -> Optional[str]:
    """The severity of a counter finding by its thresholds, or None when it is no finding.

    ``percent`` is what the levels' ``*_percent`` are compared with: the lower bound of the share's Wilson interval
    (``share()["percent_lower"]``). A level also needs its ``*_min_events`` events, whatever the rate or share.
    """
    if not th.get("enabled", True) or delta is None or delta < max(1, th.get("min_delta") or 1):
        return None
    severity = "info"
    for level in ("warning", "critical"):
        want_rate, want_pct = th.get(level + "_rate"), th.get(level + "_percent")
        if want_rate is None and want_pct is None:
            continue
        want_events = th.get(level + "_min_events")
        if delta < (MIN_EVENTS[level] if want_events is None else want_events):
            continue
        if want_rate is not None and (rate is None or rate < want_rate):
            continue
        if want_pct is not None and (percent is None or percent < want_pct):
            continue
        severity = level
    return th.get("severity") or severity


def _fmt_rate(rate: Optional[float]) -> str:
    return "" if rate is None else ", %s/s" % fmt_num(rate)


def _secs(seconds: Optional[float]) -> str:
    return "%s s" % fmt_num(round(seconds, 1) if seconds else seconds)


def _target_args(target: Dict[str, Any]) -> Dict[str, Any]:
    """How the remediate role reaches the target: container or netns, as the modules take them."""
    kind = target.get("kind")
    if kind == "container":
        return {"container": target.get("name")}
    if kind == "netns":
        return {"netns": target.get("netns_path") or target.get("name")}
    return {}


class _Ctx:
    """What every rule of the catalogue needs: the two snapshots, the interval, the thresholds."""

    def __init__(self, before: Dict[str, Any], after: Optional[Dict[str, Any]], seconds: Optional[float],
                 thresholds: Dict[str, Dict[str, Any]], label: str) -> None:
        self.before = before
        self.after = after
        self.seconds = seconds
        self.th = thresholds
        self.label = label
        self.target = _get(after, "target") or _get(before, "target") or {"kind": "host", "name": "host", "label": label}
        self.findings: List[Dict[str, Any]] = []

    @property
    def current(self) -> Dict[str, Any]:
        return self.after if self.after is not None else self.before

    @property
    def deltas(self) -> bool:
        return self.after is not None and bool(self.seconds)

    def add(self, fid: str, severity: Optional[str], subject: str, summary: str, evidence: Dict[str, Any],
            explanation: str, advice: str, kind: str = "counter", remediation: Optional[str] = None,
            remediation_args: Optional[Dict[str, Any]] = None) -> None:
        th = self.th.get(fid, {})
        if severity is None or not th.get("enabled", True):
            return
        severity = th.get("severity") or severity
        ev = {"interval": self.seconds}
        ev.update(evidence)
        self.findings.append({
            "id": fid, "layer": layer_of(fid), "severity": severity, "kind": kind, "target": self.label,
            "subject": subject, "summary": summary, "evidence": ev, "explanation": explanation,
            "remediation": remediation, "remediation_args": remediation_args, "advice": advice,
            "explained_by": [],
        })

    def counter_finding(self, fid: str, subject: str, counters: List[Dict[str, Any]], what: str, explanation: str,
                        advice: str, denominator: Optional[Dict[str, Any]] = None, kind: str = "counter",
                        extra: Optional[Dict[str, Any]] = None) -> None:
        """A finding from the sum of ``counters``' deltas.

        ``denominator``: the traffic it is a share of, {name, delta, includes_events (default true), counters?}.
        """
        if not self.deltas:
            return
        deltas = [c["delta"] for c in counters if c["delta"] is not None]
        if not deltas:
            return
        delta = sum(deltas)
        self.graded(fid, subject, delta, counters, what, explanation, advice, denominator, kind, extra)

    def graded(self, fid: str, subject: str, delta: int, counters: List[Dict[str, Any]], what: str, explanation: str,
               advice: str, denominator: Optional[Dict[str, Any]] = None, kind: str = "counter",
               extra: Optional[Dict[str, Any]] = None) -> None:
        """A counter finding of ``delta`` events: its rate, its share of ``denominator`` and its severity."""
        rate = _rate(delta, self.seconds)
        den = None
        sh = {"population": None, "percent": None, "percent_lower": None}
        if denominator:
            den = dict(denominator)
            includes = den.setdefault("includes_events", True)
            if not includes:
                den["name"] = " + ".join([den["name"]] + [c["name"] for c in counters])
            sh = share(delta, den.get("delta"), includes)
            den["population"] = sh["population"]
        severity = grade(self.th[fid], delta, rate, sh["percent_lower"])
        if severity is None:
            return
        pct = "" if sh["percent"] is None or den is None else ", %s%% of %s (%d of %d)" % (
            fmt_num(sh["percent"]), den["name"], delta, sh["population"])
        summary = "%s: %s +%d in %s%s%s" % (subject, what, delta, _secs(self.seconds), _fmt_rate(rate), pct)
        evidence: Dict[str, Any] = {"counters": counters, "delta": delta, "rate": rate, "percent": sh["percent"],
                                    "percent_lower": sh["percent_lower"]}
        if den:
            evidence["denominator"] = den
        if extra:
            evidence.update(extra)
        self.add(fid, severity, subject, summary, evidence, explanation, advice, kind=kind)


# ------------------------------------------------------------------------------------------------
# qdisc
# ------------------------------------------------------------------------------------------------

def _qdisc_key(q: Dict[str, Any]) -> Tuple[Any, Any, Any]:
    return (q.get("interface"), q.get("handle"), q.get("parent"))


def _qdiscs(facts: Optional[Dict[str, Any]]) -> Dict[Tuple[Any, Any, Any], Dict[str, Any]]:
    tc = _layer(facts, "tc")
    return dict((_qdisc_key(q), q) for q in _list(_get(tc, "qdiscs")) if isinstance(q, dict))


def _netem_params(opts: Dict[str, Any]) -> Dict[str, Any]:
    return dict((k, v) for k, v in sorted(opts.items()) if v not in (None, False, {}) and k != "unparsed")


def _check_qdiscs(c: _Ctx) -> None:
    before = _qdiscs(c.before)
    after = _qdiscs(c.after) if c.after is not None else {}
    current = after if c.after is not None else before
    for key, q in current.items():
        iface, handle, parent = key
        where = "%s %s on %s (%s)" % (q.get("kind"), handle, iface, "root" if q.get("root") else "parent %s" % parent)
        old = before.get(key) if c.after is not None else None
        stats = ("drops", "overlimits", "packets", "requeues", "backlog_bytes", "qlen")
        counters = [counter(s, _int(_get(old, "stats", s)) if c.after is not None else _int(_get(q, "stats", s)),
                            _int(_get(q, "stats", s)) if c.after is not None else None, c.seconds)
                    for s in stats if _get(q, "stats", s) is not None]
        qinfo = {"interface": iface, "kind": q.get("kind"), "handle": handle, "parent": parent, "root": q.get("root")}
        if netem_qdisc(q):
            _netem(c, q, where, qinfo, counters)
            continue
        if c.after is None or old is None:
            continue  # a qdisc created between the snapshots: its counters do not cover the interval
        drops = next((x for x in counters if x["name"] == "drops"), None)
        packets = next((x for x in counters if x["name"] == "packets"), None)
        if drops is None:
            continue
        denominator = None
        if packets is not None and packets["delta"] is not None and drops["delta"] is not None:
            # packets counts what the qdisc sent on: the packets offered to it are those and its drops
            denominator = {"name": "packets", "delta": packets["delta"], "includes_events": False}
        c.counter_finding(
            "qdisc.drops", "qdisc " + where, [drops], "drops",
            "The %s queueing discipline on %s dropped packets: its queue was full (limit reached) or its rate or "
            "policing limits discarded them. Overlimits count packets held back by shaping." % (q.get("kind"), iface),
            "Check the qdisc's configuration (tc -s qdisc show dev %s): raise its limit or rate, or remove the "
            "shaper if it is unintended." % iface,
            denominator=denominator, extra={"qdisc": qinfo, "context": [x for x in counters if x["name"] != "drops"]})


def _netem(c: _Ctx, q: Dict[str, Any], where: str, qinfo: Dict[str, Any], counters: List[Dict[str, Any]]) -> None:
    # compiled only where a netem qdisc is found (module code reaches the target in a zip, compiled on every run)
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netem as _netem_options
    params = _netem_params(_dict(q.get("options")))
    lossy = _netem_options.lossy(params)
    drops = next((x for x in counters if x["name"] == "drops"), None)
    dropped = ""
    if drops is not None:
        total = drops["after"] if drops["after"] is not None else drops["before"]
        if drops["delta"] is not None:
            dropped = ", dropped %d (+%d in %s)" % (total, drops["delta"], _secs(c.seconds))
        elif total is not None:
            dropped = ", dropped %d" % total
    summary = "qdisc %s: %s%s" % (where, _netem_options.human(params), dropped)
    c.add("qdisc.netem", "critical" if lossy else "warning", "qdisc " + where, summary,
          {"qdisc": qinfo, "config": params, "counters": counters},
          "A netem qdisc emulates a bad network: it drops, duplicates, corrupts, delays or reorders packets on "
          "purpose (tc qdisc ... netem loss 30%%). Every packet leaving %s passes through it." % qinfo["interface"],
          "Remove it unless it is an intended drill: tc qdisc del dev %s %s" % (
              qinfo["interface"], "root" if qinfo.get("root") else "parent %s" % qinfo["parent"]),
          kind="config", remediation="netem",
          remediation_args=dict(_target_args(c.target), interface=qinfo["interface"], state="absent"))


# ------------------------------------------------------------------------------------------------
# netfilter
# ------------------------------------------------------------------------------------------------

# the values of an anonymous nft counter, which nft -j renders into a rule's spec: not part of what the rule is
_SPEC_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")


def _keyed_rules(facts: Optional[Dict[str, Any]]) -> Dict[Tuple[Any, ...], Dict[str, Any]]:
    """Rules by (family, backend, table, chain, spec without counter values, n-th such rule): stable when others are
    inserted and when the rule's own counter moves."""
    ipt = _layer(facts, "iptables")
    out: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
    seen: Dict[Tuple[Any, ...], int] = {}
    for r in _list(_get(ipt, "rules")):
        if not isinstance(r, dict):
            continue
        spec = _SPEC_COUNTER.sub("counter", r["spec"]) if isinstance(r.get("spec"), str) else r.get("spec")
        base = (r.get("family"), r.get("backend"), r.get("table"), r.get("chain"), spec)
        seen[base] = seen.get(base, 0) + 1
        out[base + (seen[base],)] = r
    return out


def _rule_subject(r: Dict[str, Any]) -> str:
    return "%s %s %s #%s (%s)" % (r.get("family"), r.get("table"), r.get("chain"), r.get("position"), r.get("backend"))


def _rule_info(r: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("family", "backend", "table", "chain", "position", "spec", "target", "verdict", "handle", "comment")
    out = dict((k, r.get(k)) for k in keys if k in r)
    out["action"] = _netfilter.action(r)
    return out


def _probability(stat: Any) -> Optional[float]:
    if not isinstance(stat, dict):
        return None
    p = stat.get("probability")
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        return round(float(p), 4)
    every = stat.get("every")
    if isinstance(every, int) and every > 0:
        return round(1.0 / every, 4)
    return None


def _packets(r: Optional[Dict[str, Any]]) -> Optional[int]:
    return _int(_get(r, "counters", "packets"))


def _check_rules(c: _Ctx) -> None:
    before = _keyed_rules(c.before)
    after = _keyed_rules(c.after) if c.after is not None else {}
    current = after if c.after is not None else before
    for key, r in current.items():
        old = before.get(key) if c.after is not None else None
        if c.after is not None:
            packets = counter("packets", _packets(old), _packets(r), c.seconds)
        else:
            packets = counter("packets", _packets(r), None, c.seconds)
        if random_drop_rule(r):
            _random_drop(c, r, packets, old is not None or c.after is None)
        elif _netfilter.drops(r) and c.after is not None and old is not None:
            c.counter_finding(
                "netfilter.drop_hits", "rule " + _rule_subject(r), [packets], "%s rule hits" % _netfilter.action(r),
                "A firewall rule that drops or rejects packets is matching traffic now (its counter rises). This may "
                "be intended filtering, or the reason a service loses packets.",
                "Check that rule (%s) against the traffic that should pass; delete or narrow it if it is not "
                "intended." % (r.get("spec") or ""),
                extra={"rule": _rule_info(r)})
    _check_policies(c)


def _ipt_binary(r: Dict[str, Any]) -> str:
    name = "ip6tables" if r.get("family") == "ipv6" else "iptables"
    return "%s-%s" % (name, r["backend"]) if r.get("backend") in ("nft", "legacy") else name


def _random_drop(c: _Ctx, r: Dict[str, Any], packets: Dict[str, Any], comparable: bool) -> None:
    stat = r.get("statistic") or {}
    probability = _probability(stat)
    hits = packets["after"] if packets["after"] is not None else packets["before"]
    if comparable and packets["delta"] is not None:
        moved = ", hits %d (+%d in %s%s)" % (hits, packets["delta"], _secs(c.seconds), _fmt_rate(packets["rate"]))
    elif hits is not None:
        moved = ", hits %d" % hits
    else:
        moved = ", no counter"
    if stat.get("mode") == "nth":
        share = "every %s-th packet" % stat.get("every")
    elif probability is not None:
        share = "%s%% of packets at random" % fmt_num(round(probability * 100, 2))
    else:
        share = "a random share of packets"
    summary = "%s rule %s drops %s%s" % (_netfilter.action(r), _rule_subject(r), share, moved)
    info = _rule_info(r)
    info.update({"probability": probability, "mode": stat.get("mode"), "every": stat.get("every"),
                 "hits": hits, "hit_delta": packets["delta"] if comparable else None})
    fam = r.get("family")
    args = dict(_target_args(c.target), state="absent", table=r.get("table"), chain=r.get("chain"))
    if fam:
        args["family"] = fam
    c.add("netfilter.random_drop", "critical", "rule " + _rule_subject(r), summary,
          {"rule": info, "counters": [packets]},
          "The rule matches a random share of packets (statistic --mode random/nth, or nft numgen/meta random) and "
          "drops them: the loss it causes is exactly its probability, whatever the traffic. It is a fault "
          "injection (chaos testing) left in place, not filtering.",
          "Delete the rule: %s -t %s -D %s %s" % (_ipt_binary(r), r.get("table"), r.get("chain"), r.get("spec"))
          if r.get("backend") != "nft-native" else
          "Delete the rule: nft delete rule %s %s %s handle %s" % (fam, r.get("table"), r.get("chain"), r.get("handle")),
          kind="config", remediation="random_drop", remediation_args=args)


def _policies(facts: Optional[Dict[str, Any]]) -> Dict[Tuple[Any, ...], Dict[str, Any]]:
    """Built-in chains with a DROP policy, from iptables-save rulesets (which count policy hits)."""
    ipt = _layer(facts, "iptables")
    out: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
    for rs in _list(_get(ipt, "rulesets")):
        tables = _get(rs, "tables")
        if not isinstance(tables, dict):
            continue  # native nftables: chain policies carry no counters
        for tname, table in tables.items():
            for cname, chain in _dict(_get(table, "chains")).items():
                if isinstance(chain, dict) and chain.get("policy") == "DROP":
                    out[(rs.get("family"), rs.get("backend"), tname, cname)] = chain
    return out


def _check_policies(c: _Ctx) -> None:
    if c.after is None:
        return
    before = _policies(c.before)
    for key, chain in _policies(c.after).items():
        if key not in before:
            continue
        family, backend, table, name = key
        subject = "policy %s %s %s DROP (%s)" % (family, table, name, backend)
        packets = counter("packets", _int(before[key].get("packets")), _int(chain.get("packets")), c.seconds)
        c.counter_finding(
            "netfilter.drop_hits", subject, [packets], "packets dropped by the chain's policy",
            "Packets reached the end of the built-in chain %s and its DROP policy discarded them: no rule "
            "accepted them." % name,
            "Find which traffic falls through (iptables -nvL %s; add a LOG rule before the end if needed) and accept "
            "it if it should pass." % name,
            extra={"rule": {"family": family, "backend": backend, "table": table, "chain": name, "policy": "DROP"}})


# ------------------------------------------------------------------------------------------------
# conntrack
# ------------------------------------------------------------------------------------------------


def _check_conntrack(c: _Ctx) -> None:
    cur = _layer(c.current, "conntrack")
    if not cur or not cur.get("loaded"):
        return
    th = c.th["conntrack.limit"]
    usage = cur.get("usage_percent")
    old = _layer(c.before, "conntrack") if c.after is not None else None
    if isinstance(usage, (int, float)) and th.get("enabled", True):
        severity = None
        if th.get("critical_usage") is not None and usage >= th["critical_usage"]:
            severity = "critical"
        elif th.get("warning_usage") is not None and usage >= th["warning_usage"]:
            severity = "warning"
        gauge = {"count": cur.get("count"), "max": cur.get("max"), "usage_percent": usage, "buckets": cur.get("buckets")}
        if old is not None:
            gauge["count_before"] = old.get("count")
            gauge["usage_percent_before"] = old.get("usage_percent")
        c.add("conntrack.limit", severity, "nf_conntrack table",
              "conntrack table %s%% full (%s of %s entries)" % (fmt_num(usage), cur.get("count"), cur.get("max")),
              {"conntrack": gauge},
              "When the connection tracking table is full the kernel drops the first packet of every new flow "
              "(\"nf_conntrack: table full, dropping packet\"); near the limit it evicts entries early.",
              "Raise net.netfilter.nf_conntrack_max (and nf_conntrack_buckets), shorten the timeouts of idle "
              "entries, or exempt heavy flows with NOTRACK in the raw table.", kind="gauge")
    if c.deltas and old is not None:
        names = {"conntrack.drop": "drop", "conntrack.early_drop": "early_drop", "conntrack.insert_failed": "insert_failed"}
        explain = {
            "conntrack.drop": "New flows were dropped because no conntrack entry could be allocated (table full and "
                              "nothing evictable).",
            "conntrack.early_drop": "Entries were evicted early to make room for new ones: the table is at its limit.",
            "conntrack.insert_failed": "Entries could not be inserted (a race between packets of the same new flow, "
                                       "typical of parallel DNS over UDP through NAT); the packet is dropped.",
        }
        for fid, stat in names.items():
            cnt = counter("nf_conntrack." + stat, _int(_get(old, "stat", "total", stat)),
                          _int(_get(cur, "stat", "total", stat)), c.seconds)
            c.counter_finding(fid, "nf_conntrack", [cnt], stat, explain[fid],
                              "Check conntrack usage (conntrack -S, nf_conntrack_count vs nf_conntrack_max) and raise "
                              "the limit or exempt flows with NOTRACK.",
                              extra={"conntrack": {"count": cur.get("count"), "max": cur.get("max"),
                                                   "usage_percent": cur.get("usage_percent")}})


# ------------------------------------------------------------------------------------------------
# the counters (nic, softnet, ip, tcp, udp, socket: counters.py) and the drop reasons (reasons.py), loaded where those
# layers were collected (module code reaches a target in a zip and is compiled on every run there: the remediate module
# reads the tc and iptables layers only). Their readers here are compliance's key rates' too.
# ------------------------------------------------------------------------------------------------

def _counters() -> Any:
    from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import counters
    return counters


def _reasons() -> Any:
    from ansible_collections.netdiag.packetloss.plugins.module_utils._analysis import reasons
    return reasons


def _interfaces(facts: Optional[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    netstat = _layer(facts, "netstat")
    ifaces = _get(netstat, "interfaces")
    return ifaces if isinstance(ifaces, dict) else {}


def _snmp(facts: Optional[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    snmp = _get(_layer(facts, "netstat"), "snmp")
    return snmp if isinstance(snmp, dict) else {}


# the most SYN-ACKs one SYN draws: the first and net.ipv4.tcp_synack_retries' default 5 retransmits (a SYN-ACK is
# retransmitted when the prober's reset or the SYN-ACK itself is lost, as with a random-drop rule on the way)
SYN_ACKS_PER_SYN = 6


def _drop_reason_layer(facts: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    layer = _get(facts, "drop_reasons")
    return layer if isinstance(layer, dict) and "events" in layer else None


# ------------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------------

_CHECKS: Tuple[Callable[[_Ctx], None], ...] = (_check_qdiscs, _check_rules, _check_conntrack)


def interval_of(before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]], interval: Optional[float]) -> Optional[float]:
    """Seconds between two snapshots: their timestamps when both have one, else ``interval``.

    None (configuration findings only) without a second snapshot or with ``interval`` 0; ``interval`` None
    means "from the timestamps".
    """
    if after is None or interval == 0:
        return None
    tb, ta = _get(before, "timestamp"), _get(after, "timestamp")
    if isinstance(tb, (int, float)) and isinstance(ta, (int, float)) and ta > tb:
        return round(float(ta) - float(tb), 3)
    return float(interval) if interval else None


def _label(facts: Optional[Dict[str, Any]], default: str = "host") -> str:
    return _get(facts, "target", "label") or default


def _analyze_one(before: Dict[str, Any], after: Optional[Dict[str, Any]], interval: Optional[float],
                 thresholds: Dict[str, Dict[str, Any]], label: str, global_layers: bool) -> List[Dict[str, Any]]:
    seconds = interval_of(before, after, interval)
    ctx = _Ctx(before, after if seconds else None, seconds, thresholds, label)
    for check in _CHECKS:
        check(ctx)
    if _layer(before, "netstat") is not None or _layer(after, "netstat") is not None:
        _counters().check(ctx, global_layers)
    return ctx.findings


_ALWAYS_EXPLAINS = ("netfilter.random_drop", "qdisc.netem")


def _explains(f: Dict[str, Any]) -> bool:
    """A random-drop rule or a netem qdisc always explains a symptom; other causes from severity "warning" up."""
    return f["id"] in CAUSES and (f["id"] in _ALWAYS_EXPLAINS or severity_rank(f["severity"]) >= 1)


def _cause_ref(f: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": f["id"], "target": f["target"], "subject": f["subject"], "severity": f["severity"]}


def host_causes(findings: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Every cause on a host that explains its symptoms, each named once ({id, target, subject, severity}), ranked:
    random drops and netem first, then by severity, target, id and subject."""
    causes = sorted((f for f in findings if _explains(f)),
                    key=lambda x: (x["id"] not in _ALWAYS_EXPLAINS, -severity_rank(x["severity"]), x["target"], x["id"], x["subject"]))
    return [_cause_ref(x) for x in causes]


def link_symptoms(findings: List[Dict[str, Any]], thresholds: Dict[str, Dict[str, Any]],
                  global_label: Optional[str] = "host") -> List[Dict[str, Any]]:
    """Name the causes (on the same host: the host or any of its containers/namespaces) of every symptom.

    Linear in the targets of the host: a symptom's ``explained_by`` names the causes on its own target (first) and on
    the host's own namespace ``global_label``, which carries the traffic of every container; a symptom of the host's
    own namespace names every cause of the host. Causes on other targets are counted in ``explained_by_others``
    (each is named once per host in the diagnosis' ``causes``, see host_causes). A random-drop rule or a netem qdisc
    always explains; other causes from severity "warning" up. A symptom explained by a cause of at least "warning"
    anywhere on the host is capped at its ``explained_max_severity`` (the cause carries the severity).
    """
    causes = host_causes(findings)
    by_target: Dict[str, List[Dict[str, Any]]] = {}
    for c in causes:
        by_target.setdefault(c["target"], []).append(c)
    strong = any(severity_rank(c["severity"]) >= 1 for c in causes)
    for f in findings:
        if f["id"] not in SYMPTOMS:
            continue
        own = by_target.get(f["target"], [])
        if f["target"] == global_label:
            listed = own + [c for c in causes if c["target"] != f["target"]]
        else:
            listed = own + by_target.get(global_label or "", [])
        f["explained_by"] = [dict(c) for c in listed]
        if len(causes) > len(listed):
            f["explained_by_others"] = len(causes) - len(listed)
        cap = thresholds.get(f["id"], {}).get("explained_max_severity")
        if causes and cap and strong and severity_rank(f["severity"]) > severity_rank(cap):
            f["severity_unexplained"] = f["severity"]
            f["severity"] = cap
        if causes:
            seen = set(id(c) for c in listed)
            top = listed[:3] + [c for c in causes[:3 + len(listed)] if id(c) not in seen][:max(0, 3 - len(listed))]
            names = ", ".join(sorted(set("%s on %s" % (x["id"], x["target"]) for x in top)))
            f["summary"] += "; explained by " + names + (" and %d more" % (len(causes) - 3) if len(causes) > 3 else "")
    return findings


def sort_findings(findings: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return sorted(findings, key=lambda f: (-severity_rank(f["severity"]), f["target"] != "host", f["target"],
                                           LAYERS.index(f["layer"]) if f["layer"] in LAYERS else 99, f["id"], f["subject"]))


def probe_syn_acks(probes: List[Dict[str, Any]]) -> int:
    """The most SYN-ACKs the syn probes that ran on the diagnosed host itself (``on_target``: probe_from host, or the
    controller diagnosing itself) can draw there: SYN_ACKS_PER_SYN per SYN sent. A probe from another machine draws
    its answers there, not on the host."""
    return sum(SYN_ACKS_PER_SYN * p["sent"] for p in probes
               if p.get("mode") == "syn" and p.get("on_target") and isinstance(p.get("sent"), int))


def analyze(before: Dict[str, Any], after: Optional[Dict[str, Any]] = None, interval: Optional[float] = None,
            thresholds: Optional[Dict[str, Any]] = None, label: Optional[str] = None) -> List[Dict[str, Any]]:
    """Findings of one target from two snapshots of its facts (``after`` None or ``interval`` 0: config only).

    ``before``/``after`` are one target's facts (a value of ``ansible_facts.packetloss.targets``, or the top-level
    ``ansible_facts.packetloss``). ``thresholds`` are overrides merged over THRESHOLDS (see merge_thresholds).
    """
    th = merge_thresholds(thresholds)
    findings = _analyze_one(before or {}, after, interval, th, label or _label(before), global_layers=True)
    if after is not None and interval != 0:
        findings.extend(_reasons().check_drop_reasons(_drop_reason_layer(after), findings, th, label or _label(before),
                                                      _get(after, "target") or {"label": label or _label(before)}))
    return sort_findings(link_symptoms(findings, th))


def targets_of(facts: Optional[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """label -> per-target facts, from ansible_facts.packetloss (with or without ``targets``) or a targets dict."""
    if not isinstance(facts, dict) or not facts:
        return {}
    if isinstance(facts.get("targets"), dict):
        return facts["targets"]
    if "target" in facts or any(k in facts for k in ("tc", "netstat", "conntrack", "iptables")):
        return {_label(facts): facts}
    return dict((k, v) for k, v in facts.items() if isinstance(v, dict))


def analyze_host(before_targets: Dict[str, Any], after_targets: Optional[Dict[str, Any]] = None,
                 interval: Optional[float] = None, thresholds: Optional[Dict[str, Any]] = None,
                 host: Optional[str] = None, probe_answers: int = 0) -> List[Dict[str, Any]]:
    """Findings of every target of one host; symptoms are explained by causes on any of its targets.

    The arguments are ``{label: facts}`` (or whole ``ansible_facts.packetloss`` results). softnet_stat is
    global to the host, so softnet findings are made for the ``host`` target only (or the first target when the
    host's own namespace was not collected); every other layer is per namespace. A target collected in one
    snapshot only gets configuration findings. With ``host``, every finding also carries it. ``probe_answers``: the most
    SYN-ACKs this run's syn probes that ran on this host can draw (their NO_SOCKET drops are the probe's own noise, see
    reasons.PROBE_SYN_ACK_AT; probe_syn_acks counts them).
    """
    th = merge_thresholds(thresholds)
    before_t, after_t = targets_of(before_targets), targets_of(after_targets)
    labels = list(before_t) + [l for l in after_t if l not in before_t]
    global_label = "host" if "host" in labels else (labels[0] if labels else None)
    findings: List[Dict[str, Any]] = []
    for label in labels:
        b, a = before_t.get(label), after_t.get(label)
        if b is None:  # appeared between the snapshots: config findings from its one snapshot
            b, a = a, None
        findings.extend(_analyze_one(b or {}, a, interval, th, label, global_layers=label == global_label))
    if interval != 0:  # the host's drop reasons: recorded once, in the facts of one target (recorded_with the others)
        for label in labels:
            layer = _drop_reason_layer(after_t.get(label)) if before_t.get(label) is not None else None
            if layer is not None:
                findings.extend(_reasons().check_drop_reasons(layer, list(findings), th, global_label or label,
                                                              _get(after_t.get(label), "target") or {"label": label},
                                                              probe_answers))
                break
    link_symptoms(findings, th, global_label)
    if host is not None:
        for f in findings:
            f["host"] = host
    return sort_findings(findings)


def worst(findings: Iterable[Dict[str, Any]], by: str = "layer") -> Dict[str, Optional[str]]:
    """The worst severity per ``by`` (layer, target, id or host); layers without findings are None."""
    out: Dict[str, Optional[str]] = dict((l, None) for l in LAYERS) if by == "layer" else {}
    for f in findings:
        key = f.get(by)
        if key is None:
            continue
        if severity_rank(f.get("severity")) > severity_rank(out.get(key)):
            out[key] = f["severity"]
    return out


def worst_severity(findings: Iterable[Dict[str, Any]]) -> Optional[str]:
    best: Optional[str] = None
    for f in findings:
        if severity_rank(f.get("severity")) > severity_rank(best):
            best = f["severity"]
    return best


def at_least(findings: Iterable[Dict[str, Any]], severity: str) -> List[Dict[str, Any]]:
    if severity not in SEVERITIES:
        raise ValueError("severity must be one of %s" % ", ".join(SEVERITIES))
    return [f for f in findings if severity_rank(f.get("severity")) >= severity_rank(severity)]


# ------------------------------------------------------------------------------------------------
# key drop counters per second (the packetloss_key_rates filter, the diagnose action, the Prometheus textfile),
# read from the facts with the readers the checks above use: None when the layer was not read
# ------------------------------------------------------------------------------------------------

def _key_qdisc_drops(facts: Optional[Dict[str, Any]]) -> Optional[int]:
    tc = _layer(facts, "tc")
    if tc is None or not isinstance(tc.get("qdiscs"), list):
        return None
    return sum(_int(_get(q, "stats", "drops")) or 0 for q in tc["qdiscs"] if isinstance(q, dict))


def _key_nic(key: str) -> Callable[[Optional[Dict[str, Any]]], Optional[int]]:
    def read(facts: Optional[Dict[str, Any]]) -> Optional[int]:
        if not isinstance(_get(_layer(facts, "netstat"), "interfaces"), dict):
            return None
        return sum(_int(_get(row, "stats", key)) or 0 for row in _interfaces(facts).values())
    return read


def _key_snmp(section: str, key: str) -> Callable[[Optional[Dict[str, Any]]], Optional[int]]:
    def read(facts: Optional[Dict[str, Any]]) -> Optional[int]:
        return _int(_get(_snmp(facts), section, key))
    return read


def _key_conntrack_drop(facts: Optional[Dict[str, Any]]) -> Optional[int]:
    return _int(_get(_layer(facts, "conntrack"), "stat", "total", "drop"))


def _key_random_drop_packets(facts: Optional[Dict[str, Any]]) -> Optional[int]:
    if _layer(facts, "iptables") is None:
        return None
    return sum(_packets(r) or 0 for r in _keyed_rules(facts).values() if random_drop_rule(r))


KEY_COUNTERS: Tuple[Tuple[str, Callable[[Optional[Dict[str, Any]]], Optional[int]]], ...] = (
    ("qdisc_drops", _key_qdisc_drops),
    ("nic_rx_dropped", _key_nic("rx_dropped")),
    ("nic_tx_dropped", _key_nic("tx_dropped")),
    ("tcp_listen_overflows", _key_snmp("TcpExt", "ListenOverflows")),
    ("tcp_syn_retrans", _key_snmp("TcpExt", "TCPSynRetrans")),
    ("tcp_retrans_segs", _key_snmp("Tcp", "RetransSegs")),
    ("udp_rcvbuf_errors", _key_snmp("Udp", "RcvbufErrors")),
    ("conntrack_drop", _key_conntrack_drop),
    ("netfilter_random_drop_packets", _key_random_drop_packets),
)


def key_rates(before: Any, after: Any, interval: Optional[float] = None) -> Dict[str, Dict[str, float]]:
    """{target: {counter: rate per second}} of KEY_COUNTERS between two packetloss_facts snapshots of one host."""
    before_t, after_t = targets_of(before), targets_of(after)
    out: Dict[str, Dict[str, float]] = {}
    for label, b in before_t.items():
        a = after_t.get(label)
        if not isinstance(b, dict) or not isinstance(a, dict):
            continue
        seconds = interval_of(b, a, interval)
        rates: Dict[str, float] = {}
        for name, read in KEY_COUNTERS:
            c = counter(name, read(b), read(a), seconds)
            if c["rate"] is not None:
                rates[name] = float(c["rate"])
        if rates:
            out[label] = rates
    return out


# ------------------------------------------------------------------------------------------------
# coverage: what was read, per analyzer layer (docs/report-schema.md, "Layers")
# ------------------------------------------------------------------------------------------------

# read: every source of the layer was read (a clean layer is clean); partial: some sources could not be read (the
# fact layer's ``unread`` list of {source, reason}); unread: the layer could not be read (``available: false``);
# not_collected: the layer was left out of gather_subset. Only "read" may be shown as clean.
READ_STATES = ("read", "partial", "unread", "not_collected")


def layer_state(cov: Optional[Dict[str, Any]]) -> str:
    """The READ_STATES word of one layer's coverage (a coverage without ``state``: from ``available``)."""
    cov = cov or {}
    return str(cov.get("state") or ("read" if cov.get("available", True) else "unread"))


# which analyzer layers a source of a fact layer feeds, by the end of its path (a source not listed here: every
# analyzer layer of its fact layer)
SOURCE_LAYERS = (
    ("net/dev", ("nic",)), ("ethtool", ("nic",)), ("links", ("nic",)),
    ("net/snmp", ("ip", "tcp", "udp", "socket")), ("net/netstat", ("ip", "tcp", "socket")),
    ("net/snmp6", ("ip", "udp")), ("softnet_stat", ("softnet",)),
    ("nf_conntrack_count", ("conntrack",)), ("nf_conntrack_max", ("conntrack",)),
    ("net/stat/nf_conntrack", ("conntrack",)),
)


def _source_layers(entry: Dict[str, Any], fact_layer: str) -> Tuple[str, ...]:
    named = entry.get("layers")
    if isinstance(named, list) and named and all(l in LAYERS for l in named):
        return tuple(named)
    source = str(entry.get("source") or "").rstrip("/")
    for suffix, layers in SOURCE_LAYERS:
        if source == suffix or source.endswith("/" + suffix):
            return layers
    return tuple(l for l in LAYERS if FACT_LAYER[l] == fact_layer)


# the collectors' per-source map (``sources``: {name: {path, read, reason}}): which analyzer layers each name feeds
SOURCE_NAME_LAYERS = {
    ("netstat", "interfaces"): ("nic",), ("netstat", "snmp"): ("ip", "tcp", "udp", "socket"),
    ("netstat", "netstat"): ("ip", "tcp", "socket"), ("netstat", "snmp6"): ("ip", "udp"),
    ("netstat", "softnet"): ("softnet",), ("tc", "qdiscs"): ("qdisc",),
}


def _unread_sources(fl: Dict[str, Any], fact_layer: str, layer: str) -> List[Dict[str, Any]]:
    """The fact layer's unread sources that feed ``layer``: from its ``sources`` map (a source with ``read: false``,
    unless it does not apply here, such as net/snmp6 on a live host without IPv6) and its ``unread`` list."""
    out = []
    sources = fl.get("sources")
    for name, row in sorted(sources.items()) if isinstance(sources, dict) else ():
        if not isinstance(row, dict) or row.get("read", True) or row.get("applies", True) is False:
            continue
        feeds = SOURCE_NAME_LAYERS.get((fact_layer, name), tuple(l for l in LAYERS if FACT_LAYER[l] == fact_layer))
        if layer in feeds:
            out.append({"source": row.get("path") or name, "reason": row.get("reason")})
    for entry in _list(fl.get("unread")):
        if isinstance(entry, str):
            entry = {"source": entry, "reason": None}
        if isinstance(entry, dict) and layer in _source_layers(entry, fact_layer):
            # a ruleset the netfilter reader could not read names its command, or its family/backend/table
            label = entry.get("source") or entry.get("command") or " ".join(
                str(entry[k]) for k in ("family", "backend", "table") if entry.get(k)) or fact_layer
            reason = entry.get("reason")
            if entry.get("cause") and reason:
                reason = "%s (%s)" % (reason, entry["cause"])
            out.append({"source": label, "reason": reason})
    return out


def _drops_coverage(fl: Dict[str, Any]) -> Dict[str, Any]:
    """The drops layer's coverage from the drop_reasons fact layer (already known to be a dict that is available):
    read when the events were recorded over the interval (on this target, or on the one that ``recorded_with`` names:
    the tracepoint is the host's); partial when the recording lost events; unread when it only started."""
    if fl.get("recorded_with"):
        return {"available": True, "state": "read", "unread": [],
                "reason": "the host's drop events, recorded with %s" % fl["recorded_with"]}
    if not isinstance(fl.get("events"), list):
        return {"available": False, "state": "unread", "unread": [],
                "reason": "drop events recording started (%s) but not read: no second snapshot" % (fl.get("instance") or "?")}
    lost = _int(fl.get("lost")) or 0
    if lost > 0:
        unread = [{"source": "skb:kfree_skb (%s)" % (fl.get("method") or "?"),
                   "reason": "%d of %s drop events lost: %s" % (lost, fl.get("total"), fl.get("lost_source") or "lost")}]
        return {"available": True, "state": "partial", "unread": unread,
                "reason": "not read: %s: %s" % (unread[0]["source"], unread[0]["reason"])}
    return {"available": True, "state": "read", "reason": None, "unread": []}


def _one_coverage(facts: Optional[Dict[str, Any]], layer: str) -> Dict[str, Any]:
    name = FACT_LAYER[layer]
    fl = _get(facts, name)
    if fl is None:
        return {"available": False, "state": "not_collected", "reason": "layer %s not collected (not in gather_subset)" % name,
                "unread": []}
    if not isinstance(fl, dict):
        return {"available": False, "state": "unread", "reason": "layer %s: no facts (%s)" % (name, type(fl).__name__),
                "unread": []}
    if not fl.get("available", True):
        reason = str(fl.get("reason") or "layer %s could not be read" % name)
        if fl.get("offered") is False:
            reason += " (not offered here: not known to be free of drops)"
        return {"available": False, "state": "unread", "reason": reason, "unread": []}
    if layer == "drops":
        return _drops_coverage(fl)
    unread = _unread_sources(fl, name, layer)
    if unread:
        reason = "; ".join("%s: %s" % (u["source"], u["reason"]) if u["reason"] else str(u["source"]) for u in unread)
        return {"available": True, "state": "partial", "reason": "not read: " + reason, "unread": unread}
    reason = None
    if layer == "conntrack" and fl.get("loaded") is False:
        reason = fl.get("reason") or "nf_conntrack is not loaded"
    return {"available": True, "state": "read", "reason": reason, "unread": []}


def layer_coverage(facts: Optional[Dict[str, Any]], before: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
    """Per analyzer layer, what was read: {available, state (READ_STATES), reason, unread: [{source, reason}]}.

    ``facts`` is the target's last snapshot; with ``before`` (the first of two), a layer read in one snapshot only
    is at best "partial": its counter findings need both.
    """
    out: Dict[str, Dict[str, Any]] = {}
    for layer in LAYERS:
        cov = _one_coverage(facts, layer)
        # drops: the recording spans the interval and the last snapshot says what it read (the first one started it)
        if before is not None and layer != "drops" and cov["state"] in ("read", "partial"):
            first = _one_coverage(before, layer)
            if first["state"] in ("unread", "not_collected"):
                cov = dict(cov, state="partial", unread=cov["unread"] + [
                    {"source": "%s (first snapshot)" % FACT_LAYER[layer], "reason": first["reason"]}])
                cov["reason"] = "not read: " + "; ".join("%s: %s" % (u["source"], u["reason"]) for u in cov["unread"])
            elif first["state"] == "partial":
                extra = [u for u in first["unread"] if u not in cov["unread"]]
                if extra:
                    cov = dict(cov, state="partial", unread=cov["unread"] + extra)
                    cov["reason"] = "not read: " + "; ".join("%s: %s" % (u["source"], u["reason"]) for u in cov["unread"])
        out[layer] = cov
    return out


def not_read(coverage: Dict[str, Dict[str, Any]]) -> List[str]:
    """The layers of a coverage (layer_coverage) that are not fully read, in LAYERS order."""
    out = []
    for layer in LAYERS:
        cov = coverage.get(layer) or {}
        if cov.get("state", "read" if cov.get("available", True) else "unread") != "read":
            out.append(layer)
    return out


__all__ = ["THRESHOLDS", "FINDING_IDS", "LAYERS", "SEVERITIES", "CAUSES", "SYMPTOMS", "merge_thresholds", "analyze",
           "analyze_host", "targets_of", "interval_of", "link_symptoms", "host_causes", "sort_findings", "worst", "worst_severity",
           "at_least", "layer_coverage", "not_read", "READ_STATES", "counter", "grade", "share", "wilson_lower",
           "WILSON_Z", "MIN_EVENTS", "thresholds_markdown", "probe_syn_acks", "SYN_ACKS_PER_SYN", "KEY_COUNTERS", "key_rates",
           "severity_rank", "layer_state"]
