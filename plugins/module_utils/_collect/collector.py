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
import re
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._common import fileio as _fileio
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.fileio import (
    PROC_MAX, RULESET_MAX, TC_MAX, InputError, read_text, run_bounded)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import dropreasons as _dropreasons
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.rtnetlink import Netlink, driver_stats, nft_tables
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import procfs as _procfs
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netfilter as _rulesets
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.tc import parse_tc_qdisc_show, read_qdiscs
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import Target, entered

LAYERS = ("tc", "netstat", "conntrack", "iptables", "drop_reasons")
IPTABLES_NFT_TABLES = ("filter", "nat", "mangle", "raw", "security")
COMMAND_TIMEOUT = 60


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
                 ip6tables_src: Optional[str] = None, nft_src: Optional[str] = None, rules: str = "all") -> None:
        self.proc_root = proc_root
        self.live = proc_root is None
        self.interfaces = interfaces
        self.ethtool = ethtool
        self.tc_src = tc_src
        self.iptables_src = iptables_src
        self.ip6tables_src = ip6tables_src
        self.nft_src = nft_src
        self.drops_only = rules == "drops"
        self.warnings: List[str] = []
        self._netlink: Optional[Netlink] = None
        # drop_reasons: seconds between the two snapshots (set by the fact module), the recording, the target
        # being collected and the one whose facts hold the host's recording
        self.interval = 0.0
        self._recorder: Optional[_dropreasons.Recorder] = None
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
        live = read_live()
        self.warnings.extend(live.warnings)
        rulesets: List[Dict[str, Any]] = [
            _rulesets.parse_iptables_save(text, family=family, backend=backend, source=command, drops_only=self.drops_only)
            for family, backend, command, text in live.saves]
        native = [_rulesets.parse_nft_json(text, source=command) for _family, _table, command, text in live.tables]
        live.unread.extend(opaque_drops(native))
        if native:
            rulesets.append(_merge_nft(native))
        out = _summarise(rulesets, live.notes, self.drops_only)
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
                                                              drops_only=self.drops_only))
        if self.nft_src:
            rulesets.append(_rulesets.parse_nft_json(_read(self.nft_src, RULESET_MAX), source=self.nft_src))
        out = _summarise(rulesets, [], self.drops_only)
        out.update(complete=True, unread=[])
        return out

    # -- drop reasons (skb:kfree_skb, per host) ------------------------------------------------------
    def drop_reasons(self) -> Dict[str, Any]:
        """The kernel's drop reasons over the interval (see _dropreasons): started by the first snapshot, read and
        stopped by the second, in the facts of the first target (the others say ``recorded_with``): the tracepoint
        carries no namespace, the recording is the host's."""
        label = self._target_label
        if self._recorded_with is not None and label != self._recorded_with:
            return {"available": True, "scope": "host", "recorded_with": self._recorded_with}
        if self._recorded is not None:
            if self._recorded.get("offered"):  # not recorded although offered: a warning of every snapshot
                self.warnings.append("drop_reasons not recorded: %s" % self._recorded.get("reason"))
            return self._recorded
        if not self.live:
            return self._dr_unavailable(_dropreasons.NOT_LIVE, "drop reasons are recorded on the live system, not in a copied /proc")
        if not self.interval or self.interval <= 0:
            return self._dr_unavailable(_dropreasons.NO_INTERVAL, "drop reasons are recorded over an interval: give interval > 0")
        if self._recorder is None:
            self._recorded_with = label
            try:
                self._recorder = _dropreasons.Recorder().start()
            except _dropreasons.Unavailable as exc:
                return self._dr_unavailable(exc.cause, str(exc))
            except (OSError, InputError, ValueError) as exc:
                return self._dr_unavailable(_dropreasons.FAILED, "drop reasons not recorded: %s" % exc)
            rec = self._recorder
            return {"available": True, "scope": "host", "state": "recording", "method": rec.method,
                    "instance": rec.instance, "started": rec.started, "stale_removed": rec.stale_removed}
        rec, self._recorder = self._recorder, None
        try:
            self._recorded = rec.stop()
        except (OSError, InputError, ValueError) as exc:
            self._recorded = {"available": False, "scope": "host", "cause": _dropreasons.FAILED, "offered": True,
                              "reason": "drop reasons recorded but not read: %s" % exc}
            self.warnings.append("drop_reasons not recorded: %s" % self._recorded["reason"])
        for note in self._recorded.get("notes") or []:
            if note.startswith("cannot remove") or "left mounted" in note:
                self.warnings.append("drop_reasons: %s" % note)
        return self._recorded

    def _dr_unavailable(self, cause: str, reason: str) -> Dict[str, Any]:
        self._recorded = {"available": False, "scope": "host", "cause": cause, "reason": reason,
                          "offered": cause not in _dropreasons.NOT_OFFERED}
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


_INCOMPATIBLE = re.compile(r"^# Table `([^']+)' is incompatible", re.M)


Job = Tuple[str, str, str, List[str]]  # (kind "save" or "nft", family, backend or table, argv)
NO_ROOT, MISSING_BINARY, UNREADABLE = "no_root", "missing_binary", "unreadable"
CAP_NET_ADMIN = 12


def _unread(job: Job, cause: str, reason: str) -> Dict[str, Any]:
    kind, family, which, argv = job
    return {"family": family, "backend": which if kind == "save" else "nft-native",
            "table": which if kind == "nft" else None, "command": " ".join(argv), "cause": cause, "reason": reason}


def _run_all(jobs: List[Job], unread: List[Dict[str, Any]]) -> Iterator[Tuple[Job, str]]:
    """Start every command at once (the dumps overlap on several CPUs), then yield each output in order.

    A command that is missing or fails is added to ``unread`` (see read_live); the other outputs are still returned.
    Each output is read to at most _fileio.RULESET_MAX bytes within COMMAND_TIMEOUT seconds; past either, the
    command is killed and its output is not read (``unread`` says which and why).
    """
    started = []
    for job in jobs:
        try:
            started.append((job, _fileio.spawn(job[3])))
        except FileNotFoundError:
            unread.append(_unread(job, MISSING_BINARY, "%s is not installed (not found in PATH)" % job[3][0]))
        except OSError as exc:
            unread.append(_unread(job, UNREADABLE, "%s cannot be started: %s" % (job[3][0], exc.strerror)))
    results = run_bounded([proc for _job, proc in started], RULESET_MAX, COMMAND_TIMEOUT)
    for (job, _proc), res in zip(started, results):
        if res.problem is not None or res.out is None:
            unread.append(_unread(job, UNREADABLE, "%s %s" % (" ".join(job[3]), res.problem)))
            continue
        if res.returncode != 0:
            lines = res.err.decode("utf-8", "replace").strip().splitlines()
            last = lines[-1] if lines else ""
            cause = NO_ROOT if "ermission denied" in last or "Operation not permitted" in last else UNREADABLE
            unread.append(_unread(job, cause, "%s failed (exit %d): %s" % (" ".join(job[3]), res.returncode, last[:200])))
            continue
        yield job, res.out.decode("utf-8", "replace")


def opaque_drops(native: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """An ``unread`` entry (cause unreadable) per nft table holding rules that may drop at random but whose iptables
    match nft does not name (``random_drop_unknown``, older nft): that part of the table cannot be read."""
    out: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for parsed in native:
        for rule in parsed.get("rules", []):
            if rule.get("random_drop_unknown"):
                out.setdefault((rule["family"], rule["table"]), []).append(rule)
    return [{"family": family, "backend": "nft-native", "table": table, "command": "nft -j list table %s %s" % (family, table),
             "cause": UNREADABLE,
             "reason": "nft does not name the iptables-nft match of %d drop rule(s) in table %s %s (handles %s): whether "
                       "they drop at random cannot be read (a newer nft names them)"
                       % (len(rules), family, table, ", ".join(str(r.get("handle")) for r in rules[:10]))}
            for (family, table), rules in out.items()]


class LiveRulesets:
    """What read_live read: iptables-save outputs, nft -j table listings, and what could not be read."""

    def __init__(self) -> None:
        self.saves: List[Tuple[str, str, str, str]] = []  # (family, backend, command, text)
        self.tables: List[Tuple[str, str, str, str]] = []  # (nft family, table, command, JSON text)
        self.unread: List[Dict[str, Any]] = []
        self.notes: List[str] = []
        self.warnings: List[str] = []


def _net_admin() -> Optional[bool]:
    """Whether this process has CAP_NET_ADMIN (root, or the capability), from /proc/self/status; None if unknown."""
    try:
        status = _read("/proc/self/status")
    except Unavailable:
        return None
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", status, re.M)
    return bool(int(m.group(1), 16) >> CAP_NET_ADMIN & 1) if m else None


def _any_table(family: str, table: str) -> bool:
    return True


def read_live(families: Tuple[str, ...] = ("ipv4", "ipv6"), backends: Tuple[str, ...] = ("legacy", "nft"),
              native: Callable[[str, str], bool] = _any_table) -> LiveRulesets:
    """Read the live rulesets of this network namespace: the one reader behind iptables_facts and random_drop.

    iptables: ``<iptables|ip6tables>-<legacy|nft>-save -c`` for each family in ``families`` and backend in
    ``backends`` that holds tables (legacy: /proc/net/ip{,6}_tables_names; nft: the nf_tables tables named as
    iptables names them, listed over netlink). nftables: ``nft -j list table`` for each other table that
    ``native(family, table)`` takes, and for each iptables-named table that iptables-nft-save calls incompatible
    (it holds native nft rules; iptables' own rules in it show there as "xt" expressions) if its family is in
    scope or ``native`` takes it. All commands run at once.

    Whatever could not be read is in ``unread``: one entry per ruleset (``family``, ``backend``, ``table``,
    ``command``, ``cause`` - no_root, missing_binary or unreadable - and ``reason``). Without CAP_NET_ADMIN nothing
    is read, and that is one entry with cause no_root.
    """
    live = LiveRulesets()
    if _net_admin() is False:
        live.unread.append({"family": None, "backend": None, "table": None, "command": None, "cause": NO_ROOT,
                            "reason": "not root: reading the iptables and nftables rulesets needs root (CAP_NET_ADMIN); "
                                      "this runs as uid %d without it" % os.geteuid()})
        return live
    tables = nft_tables()
    if tables is None:
        live.notes.append("nf_tables did not answer over netlink: this kernel has no nf_tables, no iptables-nft or "
                          "native nftables table was looked for")
    jobs: List[Job] = []
    for family, names_file, prefix, nft_family in (("ipv4", "net/ip_tables_names", "iptables", "ip"),
                                                   ("ipv6", "net/ip6_tables_names", "ip6tables", "ip6")):
        legacy: List[str] = []
        if family in families and "legacy" in backends:
            path = os.path.join("/proc", names_file)
            try:
                legacy = _read(path).split()
            except Unavailable as exc:
                if os.path.exists(path):  # a missing file: ip_tables is not loaded, there is no legacy table
                    live.unread.append({"family": family, "backend": "legacy", "table": None, "command": None,
                                        "cause": UNREADABLE, "reason": str(exc)})
        ipt_nft = [n for f, n in tables or [] if f == nft_family and n in IPTABLES_NFT_TABLES]
        wants_nft = family in families and "nft" in backends
        if legacy:
            jobs.append(("save", family, "legacy", [prefix + "-legacy-save", "-c"]))
        # iptables-nft-save also tells which iptables-named tables hold native rules (incompatible)
        if ipt_nft and (wants_nft or any(native(nft_family, n) for n in ipt_nft)):
            jobs.append(("save", family, "nft", [prefix + "-nft-save", "-c"]))
        if legacy and ipt_nft and wants_nft:
            live.warnings.append("both iptables backends hold %s tables here: legacy %s, nft %s; both are read"
                                 % (family, ", ".join(sorted(legacy)), ", ".join(sorted(ipt_nft))))
    for fam, name in tables or []:
        if not (fam in ("ip", "ip6") and name in IPTABLES_NFT_TABLES) and native(fam, name):
            jobs.append(("nft", fam, name, ["nft", "-j", "list", "table", fam, name]))
    incompatible: List[Job] = []
    for job, output in _run_all(jobs, live.unread):
        kind, family, which, argv = job
        if kind == "nft":
            live.tables.append((family, which, " ".join(argv), output))
            continue
        fam = "ip" if family == "ipv4" else "ip6"
        in_scope = family in families and which in backends
        for name in _INCOMPATIBLE.findall(output):  # native nft rules in an iptables-named table
            if in_scope or native(fam, name):
                incompatible.append(("nft", fam, name, ["nft", "-j", "list", "table", fam, name]))
        if in_scope:
            live.saves.append((family, which, " ".join(argv), output))
    for job, output in _run_all(incompatible, live.unread):
        live.tables.append((job[1], job[2], " ".join(job[3]), output))
    return live


def _merge_nft(parts: List[Dict[str, Any]]) -> Dict[str, Any]:
    merged = dict(parts[0])
    for key in ("tables", "chains", "rules", "named_counters"):
        merged[key] = [x for p in parts for x in p.get(key, [])]
    return merged


def _summarise(rulesets: List[Dict[str, Any]], notes: List[str], drops_only: bool = False) -> Dict[str, Any]:
    """Every rule once, in ``rules``; the rulesets keep tables, chains, policies and rule counts."""
    rules: List[Dict[str, Any]] = []
    count = 0
    for rs in rulesets:
        if isinstance(rs.get("tables"), dict):  # iptables-save: rules per table
            for table in rs["tables"].values():
                rules.extend(table.pop("rules", []))
                count += table.get("rule_count", 0)
        else:
            native = rs.pop("rules", [])
            count += len(native)
            rules.extend(r for r in native if not drops_only or _rulesets.can_drop(r))
    return {
        "rulesets": rulesets,
        "rules": rules,
        "rules_listed": "drops" if drops_only else "all",
        "random_drop_rules": [r for r in rules if r.get("random_drop")],
        "rule_count": count,
        "notes": notes,
    }
