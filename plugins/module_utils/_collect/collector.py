# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collectors, one per layer of the seed's walk. Read-only; they run on the target.

Each collector returns a dict with ``available`` (bool); when a layer cannot be read,
``available`` is False and ``reason`` says why, and the other layers are still returned.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import datetime
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.fileio import (
    PROC_MAX, RULESET_MAX, TC_MAX, InputError, read_text)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.rtnetlink import Netlink, driver_stats
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import procfs as _procfs
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netfilter as _rulesets
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.tc import parse_tc_qdisc_show, read_qdiscs
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import Target, entered

if TYPE_CHECKING:
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import dropreasons as _dropreasons_t


def _dropreasons() -> Any:
    """The drop-reason recorder, compiled only where the drops layer is read (module code reaches the target in a zip
    and is compiled on every run)."""
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import dropreasons
    return dropreasons


LAYERS = ("tc", "netstat", "conntrack", "iptables", "drop_reasons")


class Unavailable(Exception):
    """A layer that cannot be read here; the message is the reason. ``sources`` says what was tried, per source."""

    def __init__(self, reason: str, sources: Optional[Dict[str, Dict[str, Any]]] = None) -> None:
        super(Unavailable, self).__init__(reason)
        self.sources = sources


def _read(path: str, cap: int = PROC_MAX) -> str:
    """The text of one file, through _fileio: only a regular file, at most ``cap`` bytes (procfs files by default)."""
    try:
        return read_text(path, cap)
    except InputError as exc:
        raise Unavailable(str(exc))


def _layer(fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    try:
        out = fn()
    except Unavailable as exc:
        failed: Dict[str, Any] = {"available": False, "reason": str(exc)}
        if exc.sources is not None:
            failed["sources"] = exc.sources
        return failed
    except (ParseError, LookupError, RuntimeError, OSError) as exc:
        return {"available": False, "reason": str(exc)}
    out.setdefault("available", True)  # a layer may say itself that it is not available (with its reason)
    return out


# What a live read of the interfaces gets over rtnetlink and ethtool that a copied /proc tree (net/dev only) lacks.
NETLINK_ONLY = ("operstate", "mtu", "qdisc", "kind", "driver_stats", "rx_missed_errors", "rx_over_errors", "rx_crc_errors",
                "rx_frame_errors", "rx_length_errors", "rx_fifo_errors", "tx_aborted_errors", "tx_carrier_errors",
                "tx_fifo_errors", "tx_heartbeat_errors", "tx_window_errors")


class _Sources:
    """The sources of one layer, each read on its own: ``{name: {"path", "read", "reason"}}`` (see the modules' RETURN)."""

    def __init__(self) -> None:
        self.map: Dict[str, Dict[str, Any]] = {}

    def read(self, name: str, path: str, parse: Callable[..., Any], cap: int = PROC_MAX) -> Any:
        """parse(text of path, source=path), or None when the file cannot be read or parsed (recorded with the reason)."""
        try:
            value = parse(_read(path, cap), source=path)
        except (Unavailable, ParseError) as exc:
            self.failed(name, path, str(exc))
            return None
        self.done(name, path)
        return value

    def done(self, name: str, path: str) -> None:
        self.map[name] = {"path": path, "read": True, "reason": None}

    def failed(self, name: str, path: str, reason: str) -> None:
        self.map[name] = {"path": path, "read": False, "reason": reason}

    def unread(self) -> List[str]:
        return [name for name, row in self.map.items() if not row["read"]]

    def none_read(self, what: str) -> Unavailable:
        return Unavailable("no source of the %s layer could be read: %s" % (
            what, "; ".join(row["reason"] for row in self.map.values())), self.map)


class Collector:
    """Reads the layers of one target: the live system, or captured files (proc_root, src)."""

    def __init__(self, proc_root: Optional[str] = None, interfaces: Optional[List[str]] = None,
                 ethtool: bool = True, tc_src: Optional[str] = None, iptables_src: Optional[str] = None,
                 ip6tables_src: Optional[str] = None, nft_src: Optional[str] = None, rules: str = "all",
                 rules_format: str = "full") -> None:
        self.proc_root = proc_root
        self.live = proc_root is None
        self.interfaces = interfaces
        self.ethtool = ethtool
        self.tc_src = tc_src
        self.iptables_src = iptables_src
        self.ip6tables_src = ip6tables_src
        self.nft_src = nft_src
        self.drops_only = rules == "drops"
        # compact: the rules that can drop parsed in full, every rule listed (rules) as one line in rule_lines
        self.compact = rules_format == "compact"
        self.warnings: List[str] = []
        self._netlink: Optional[Netlink] = None
        # drop_reasons: seconds between the two snapshots (set by the fact module), the recording, the target
        # being collected and the one whose facts hold the host's recording
        self.interval = 0.0
        # over two module runs (interval 0): the first holds a recording for hold seconds (a keeper process), the
        # second resumes it by its instance name
        self.hold: Optional[float] = None
        self.resume: Optional[str] = None
        self._recorder: Optional["_dropreasons_t.Recorder"] = None
        self._recorded: Optional[Dict[str, Any]] = None
        self._target_label: Optional[str] = None
        self._recorded_with: Optional[str] = None

    def proc(self, rel: str) -> str:
        return os.path.join(self.proc_root or "/proc", rel)

    # -- tc -----------------------------------------------------------------------------------------
    def tc(self) -> Dict[str, Any]:
        sources = _Sources()
        if self.tc_src:
            rows = parse_tc_qdisc_show(_read(self.tc_src, TC_MAX), source=self.tc_src)
            if self.interfaces:
                rows = [r for r in rows if r["interface"] in self.interfaces]
            sources.done("qdiscs", self.tc_src)
            return {"source": self.tc_src, "qdiscs": rows, "sources": sources.map}
        if not self.live:
            raise Unavailable("qdiscs are not in /proc (the kernel gives them over netlink only): give a saved "
                              "'tc -s qdisc show' output as src")
        qdiscs = read_qdiscs(self._nl(), self.interfaces)
        sources.done("qdiscs", "netlink")
        return {"source": "netlink", "qdiscs": qdiscs, "sources": sources.map}

    def _nl(self) -> Netlink:
        if self._netlink is None:
            self._netlink = Netlink()
        return self._netlink

    # -- netstat -------------------------------------------------------------------------------------
    def netstat(self) -> Dict[str, Any]:
        """Each source read on its own: interfaces (netlink, or net/dev of a copied tree), net/snmp, net/netstat,
        net/snmp6 and net/softnet_stat. One that cannot be read is None here (``{}`` for ``snmp``) and says why in
        ``sources``; the layer is unavailable only when none could be read."""
        sources = _Sources()
        out: Dict[str, Any] = {"interfaces": self._interfaces(sources)}
        snmp: Dict[str, Dict[str, int]] = {}
        for name, rel, parse in (("snmp", "net/snmp", _procfs.parse_snmp), ("netstat", "net/netstat", _procfs.parse_snmp),
                                 ("snmp6", "net/snmp6", _procfs.parse_snmp6)):
            sections = sources.read(name, self.proc(rel), parse)
            if sections is not None:
                for section, counters in sections.items():
                    snmp.setdefault(section, {}).update(counters)
        out["snmp"] = snmp
        out["ipv6"] = sources.map["snmp6"]["read"]  # no net/snmp6: a kernel or namespace without IPv6 (or not copied)
        out["softnet"] = sources.read("softnet", self.proc("net/softnet_stat"), _procfs.parse_softnet_stat)
        unread = sources.unread()
        if len(unread) == len(sources.map):
            raise sources.none_read("netstat")
        for name in unread:
            if self.live and name == "snmp6" and not os.path.lexists(sources.map[name]["path"]):
                # a live kernel or namespace without IPv6: nothing was left unread
                sources.map[name]["applies"] = False
                sources.map[name]["reason"] = "no IPv6 here (no %s)" % sources.map[name]["path"]
            else:
                self.warnings.append("netstat: %s not read: %s" % (name, sources.map[name]["reason"]))
        out["sources"] = sources.map
        return out

    def _interfaces(self, sources: _Sources) -> Optional[Dict[str, Dict[str, Any]]]:
        if not self.live:
            path = self.proc("net/dev")
            rows = sources.read("interfaces", path, _procfs.parse_net_dev)
            if rows is None:
                return None
            sources.map["interfaces"]["lacks"] = list(NETLINK_ONLY)
            if self.interfaces:
                rows = dict((k, v) for k, v in rows.items() if k in self.interfaces)
            return dict((name, {"stats": stats}) for name, stats in rows.items())
        try:
            links = self._nl().links()
        except (OSError, ParseError) as exc:
            sources.failed("interfaces", "netlink", "cannot list the links over netlink: %s"
                           % (exc.strerror if isinstance(exc, OSError) and exc.strerror else exc))
            return None
        if self.interfaces:
            unknown = sorted(set(self.interfaces) - set(links))
            if unknown:
                raise LookupError("unknown interface(s): %s (present: %s)" % (", ".join(unknown), ", ".join(sorted(links))))
            links = dict((k, v) for k, v in links.items() if k in self.interfaces)
        if self.ethtool:
            for name, row in links.items():
                if name != "lo":
                    row["driver_stats"] = driver_stats(name)
        sources.done("interfaces", "netlink")
        return links

    # -- conntrack -----------------------------------------------------------------------------------
    def conntrack(self) -> Dict[str, Any]:
        """count, max, buckets (sys/net/netfilter/nf_conntrack_*) and stat (net/stat/nf_conntrack), each read on its
        own; ``usage_percent`` only when count and max were both read (and max is positive)."""
        base = self.proc("sys/net/netfilter")
        count_path = os.path.join(base, "nf_conntrack_count")
        stat_path = self.proc("net/stat/nf_conntrack")
        if not os.path.lexists(count_path):
            if self.live:
                return {"loaded": False, "reason": "nf_conntrack is not loaded (no %s)" % count_path}
            if not os.path.lexists(stat_path):
                raise Unavailable("neither %s nor %s is in the copied tree: nf_conntrack was not loaded there, "
                                  "or these files were not copied" % (count_path, stat_path))
        sources = _Sources()
        out: Dict[str, Any] = {"loaded": True}
        for key in ("count", "max", "buckets"):
            out[key] = sources.read(key, os.path.join(base, "nf_conntrack_" + key), _procfs.parse_int_file)
        count, limit = out["count"], out["max"]
        out["usage_percent"] = round(100.0 * count / limit, 2) if isinstance(count, int) and isinstance(limit, int) and limit > 0 else None
        out["stat"] = sources.read("stat", stat_path, _procfs.parse_conntrack_stat)
        unread = sources.unread()
        if len(unread) == len(sources.map):
            raise sources.none_read("conntrack")
        for name in unread:
            self.warnings.append("conntrack: %s not read: %s" % (name, sources.map[name]["reason"]))
        out["sources"] = sources.map
        return out

    # -- iptables / nftables -------------------------------------------------------------------------
    def iptables(self) -> Dict[str, Any]:
        if self.iptables_src or self.ip6tables_src or self.nft_src:
            return self._rulesets_from_files()
        if not self.live:
            raise Unavailable("rulesets are not in /proc: give saved iptables-save -c / nft -j output as src")
        live = _rulesets.read_live(drops_only=self.drops_only or self.compact, lines=self.compact)
        self.warnings.extend(live.warnings)
        rulesets: List[Dict[str, Any]] = [saved.parsed for saved in live.saves]
        native = [table.parsed for table in live.tables]
        live.unread.extend(_rulesets.opaque_drops(native))
        if native:
            rulesets.append(_merge_nft(native))
        out = _summarise(rulesets, live.notes, self.drops_only, self.compact)
        out.update(complete=not live.unread, unread=live.unread)
        self.warnings.extend("rulesets not read (%s): %s" % (u["cause"], u["reason"]) for u in live.unread)
        if live.unread and not live.saves and not live.tables:
            out.update(available=False, reason="; ".join(u["reason"] for u in live.unread))
        return out

    def _rulesets_from_files(self) -> Dict[str, Any]:
        rulesets = []
        for path, family in ((self.iptables_src, "ipv4"), (self.ip6tables_src, "ipv6")):
            if path:
                rulesets.append(_rulesets.parse_iptables_save(_read(path, RULESET_MAX), family=family, backend="saved", source=path,
                                                              drops_only=self.drops_only or self.compact, as_lines=self.compact))
        if self.nft_src:
            rulesets.append(_rulesets.nftables().parse_nft_json(_read(self.nft_src, RULESET_MAX), source=self.nft_src))
        out = _summarise(rulesets, [], self.drops_only, self.compact)
        out.update(complete=True, unread=[])
        return out

    # -- drop reasons (skb:kfree_skb, per host) ------------------------------------------------------
    def drop_reasons(self) -> Dict[str, Any]:
        """The kernel's drop reasons over the interval (see _dropreasons): started by the first snapshot, read and
        stopped by the second, in the facts of the first target (the others say ``recorded_with``): the tracepoint
        carries no namespace, the recording is the host's."""
        label = self._target_label
        if self._recorded_with is not None and label != self._recorded_with:
            if self._recorded is not None and not self._recorded.get("available"):
                return dict(self._recorded)  # not recorded for the host: not for this target either
            return {"available": True, "scope": "host", "recorded_with": self._recorded_with}
        if self._recorded is not None:
            if self._recorded.get("offered"):  # not recorded although offered: a warning of every snapshot
                self.warnings.append("drop_reasons not recorded: %s" % self._recorded.get("reason"))
            return self._recorded
        if not self.live:
            return self._dr_unavailable(_dropreasons().NOT_LIVE, "drop reasons are recorded on the live system, not in a copied /proc")
        if self.hold or self.resume:
            return self._dr_two_runs(label)
        if not self.interval or self.interval <= 0:
            return self._dr_unavailable(_dropreasons().NO_INTERVAL, "drop reasons are recorded over an interval: give interval > 0 "
                                        "(or drop_reasons_hold, then drop_reasons_instance in the next run)")
        if self._recorder is None:
            self._recorded_with = label
            try:
                self._recorder = _dropreasons().Recorder().start()
            except _dropreasons().Unavailable as exc:
                return self._dr_unavailable(exc.cause, str(exc))
            except (OSError, InputError, ValueError) as exc:
                return self._dr_unavailable(_dropreasons().FAILED, "drop reasons not recorded: %s" % exc)
            return self._recorder.recording()
        rec, self._recorder = self._recorder, None
        try:
            self._recorded = rec.stop()
        except (OSError, InputError, ValueError) as exc:
            return self._dr_unavailable(_dropreasons().FAILED, "drop reasons recorded but not read: %s" % exc)
        return self._dr_recorded()

    def _dr_two_runs(self, label: Optional[str]) -> Dict[str, Any]:
        """The one snapshot of a run that holds a recording for the next (hold), or that reads it (resume)."""
        self._recorded_with = label
        try:
            if self.resume:
                self._recorded = _dropreasons().resume(self.resume)
                return self._dr_recorded()
            self._recorded = _dropreasons().hold(float(self.hold or 0))
            return self._recorded
        except _dropreasons().Unavailable as exc:
            return self._dr_unavailable(exc.cause, str(exc))
        except (OSError, InputError, ValueError) as exc:
            return self._dr_unavailable(_dropreasons().FAILED, "drop reasons not recorded: %s" % exc)

    def _dr_recorded(self) -> Dict[str, Any]:
        for note in (self._recorded or {}).get("notes") or []:
            if note.startswith("cannot remove") or "left mounted" in note:
                self.warnings.append("drop_reasons: %s" % note)
        return self._recorded or {}

    def _dr_unavailable(self, cause: str, reason: str) -> Dict[str, Any]:
        self._recorded = {"available": False, "scope": "host", "cause": cause, "reason": reason,
                          "offered": cause not in _dropreasons().NOT_OFFERED}
        if self._recorded["offered"]:
            self.warnings.append("drop_reasons not recorded: %s" % reason)
        return self._recorded

    def close(self) -> None:
        """Undo what a recording set up (tracing instance, tracefs mount) if it is still running: the fact module
        calls it however it ends."""
        if self._recorder is not None:
            rec, self._recorder = self._recorder, None
            rec.close()

    # -- all of it -----------------------------------------------------------------------------------
    def collect(self, target: Target, layers: List[str]) -> Dict[str, Any]:
        started = time.time()
        self._target_label = target.label
        out: Dict[str, Any] = {"target": target.as_dict()}
        with entered(target):
            try:
                for layer in LAYERS:
                    if layer in layers:
                        out[layer] = _layer(getattr(self, layer))
            finally:
                if self._netlink is not None:
                    self._netlink.close()
                    self._netlink = None
        out["collected_at"] = datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat()
        out["timestamp"] = started
        out["elapsed"] = round(time.time() - started, 6)
        out["warnings"] = list(self.warnings)
        self.warnings = []
        return out


def _merge_nft(parts: List[Dict[str, Any]]) -> Dict[str, Any]:
    merged = dict(parts[0])
    for key in ("tables", "chains", "rules", "named_counters"):
        merged[key] = [x for p in parts for x in p.get(key, [])]
    return merged


def _summarise(rulesets: List[Dict[str, Any]], notes: List[str], drops_only: bool = False,
               compact: bool = False) -> Dict[str, Any]:
    """Every rule once, in ``rules``; the rulesets keep tables, chains, policies and rule counts.

    ``compact``: ``rules`` holds the rules that can drop (as with drops_only), and ``rule_lines`` every rule listed
    (all, or with drops_only those that can drop), one line each, grouped by family, backend, table and chain.
    """
    rules: List[Dict[str, Any]] = []
    lines: List[Dict[str, Any]] = []
    count = 0
    for rs in rulesets:
        if isinstance(rs.get("tables"), dict):  # iptables-save: rules per table
            for name, table in rs["tables"].items():
                rules.extend(table.pop("rules", []))
                count += table.get("rule_count", 0)
                for chain, chain_lines in table.pop("lines", {}).items():
                    if drops_only:
                        chain_lines = [_rulesets.compact_line(r) for r in rules if r["table"] == name and r["chain"] == chain
                                       and r["family"] == rs["family"] and r["backend"] == rs["backend"]]
                    if chain_lines:
                        lines.append({"family": rs["family"], "backend": rs["backend"], "table": name, "chain": chain,
                                      "rules": chain_lines})
        else:
            native = rs.pop("rules", [])
            count += len(native)
            listed = [r for r in native if not drops_only or _rulesets.can_drop(r)]
            if compact:
                by_chain: Dict[Any, List[str]] = {}
                for r in listed:
                    by_chain.setdefault((r["family"], r["table"], r["chain"]), []).append(_rulesets.compact_line(r))
                lines.extend({"family": f, "backend": "nft-native", "table": t, "chain": c, "rules": chain_lines}
                             for (f, t, c), chain_lines in by_chain.items())
                listed = [r for r in listed if _rulesets.can_drop(r)]
            rules.extend(listed)
    out = {
        "rulesets": rulesets,
        "rules": rules,
        "rules_listed": "drops" if drops_only else "all",
        "rules_format": "compact" if compact else "full",
        "random_drop_rules": [r for r in rules if r.get("random_drop")],
        "rule_count": count,
        "notes": notes,
    }
    if compact:
        out["rule_lines"] = lines
    return out
