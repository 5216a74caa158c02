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
import subprocess
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._netlink import Netlink, driver_stats, nft_tables
from ansible_collections.netdiag.packetloss.plugins.module_utils._parse_errors import ParseError
from ansible_collections.netdiag.packetloss.plugins.module_utils import _procfs
from ansible_collections.netdiag.packetloss.plugins.module_utils import _rulesets
from ansible_collections.netdiag.packetloss.plugins.module_utils._tc_text import parse_tc_qdisc_show
from ansible_collections.netdiag.packetloss.plugins.module_utils._target import Target, entered

LAYERS = ("tc", "netstat", "conntrack", "iptables")
IPTABLES_NFT_TABLES = ("filter", "nat", "mangle", "raw", "security")
COMMAND_TIMEOUT = 60


class Unavailable(Exception):
    """A layer that cannot be read here; the message is the reason."""


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise Unavailable("%s does not exist" % path)
    except PermissionError:
        raise Unavailable("no permission to read %s" % path)
    except OSError as exc:
        raise Unavailable("cannot read %s: %s" % (path, exc.strerror))
    return data.decode("utf-8", "replace")


def _layer(fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    try:
        out = fn()
    except (Unavailable, ParseError, LookupError, RuntimeError, OSError) as exc:
        return {"available": False, "reason": str(exc)}
    out.setdefault("available", True)  # a layer may say itself that it is not available (with its reason)
    return out


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

    def proc(self, rel: str) -> str:
        return os.path.join(self.proc_root or "/proc", rel)

    # -- tc -----------------------------------------------------------------------------------------
    def tc(self) -> Dict[str, Any]:
        if self.tc_src:
            rows = parse_tc_qdisc_show(_read(self.tc_src), source=self.tc_src)
            if self.interfaces:
                rows = [r for r in rows if r["interface"] in self.interfaces]
            return {"source": self.tc_src, "qdiscs": rows}
        if not self.live:
            raise Unavailable("qdiscs are not in /proc: give a saved 'tc -s qdisc show' output as src")
        return {"source": "netlink", "qdiscs": self._nl().qdiscs(self.interfaces)}

    def _nl(self) -> Netlink:
        if self._netlink is None:
            self._netlink = Netlink()
        return self._netlink

    # -- netstat -------------------------------------------------------------------------------------
    def netstat(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        out["interfaces"] = self._interfaces()
        snmp = _procfs.parse_snmp(_read(self.proc("net/snmp")), source=self.proc("net/snmp"))
        try:
            snmp.update(_procfs.parse_snmp(_read(self.proc("net/netstat")), source=self.proc("net/netstat")))
        except Unavailable as exc:
            self.warnings.append(str(exc))
        try:
            snmp.update(_procfs.parse_snmp6(_read(self.proc("net/snmp6")), source=self.proc("net/snmp6")))
            out["ipv6"] = True
        except Unavailable:
            out["ipv6"] = False  # a kernel or namespace without IPv6
        out["snmp"] = snmp
        try:
            out["softnet"] = _procfs.parse_softnet_stat(_read(self.proc("net/softnet_stat")), source=self.proc("net/softnet_stat"))
        except Unavailable as exc:
            out["softnet"] = []
            self.warnings.append(str(exc))
        return out

    def _interfaces(self) -> Dict[str, Dict[str, Any]]:
        if not self.live:
            rows = _procfs.parse_net_dev(_read(self.proc("net/dev")), source=self.proc("net/dev"))
            return dict((name, {"stats": stats}) for name, stats in rows.items())
        links = self._nl().links()
        if self.interfaces:
            unknown = sorted(set(self.interfaces) - set(links))
            if unknown:
                raise LookupError("unknown interface(s): %s (present: %s)" % (", ".join(unknown), ", ".join(sorted(links))))
            links = dict((k, v) for k, v in links.items() if k in self.interfaces)
        if self.ethtool:
            for name, row in links.items():
                if name != "lo":
                    row["driver_stats"] = driver_stats(name)
        return links

    # -- conntrack -----------------------------------------------------------------------------------
    def conntrack(self) -> Dict[str, Any]:
        base = self.proc("sys/net/netfilter")
        count_path = os.path.join(base, "nf_conntrack_count")
        if not os.path.exists(count_path):
            return {"loaded": False, "reason": "nf_conntrack is not loaded (no %s)" % count_path}
        out: Dict[str, Any] = {"loaded": True}
        for key in ("count", "max", "buckets"):
            path = os.path.join(base, "nf_conntrack_" + key)
            try:
                out[key] = _procfs.parse_int_file(_read(path), source=path)
            except Unavailable:
                out[key] = None
        if out.get("max"):
            out["usage_percent"] = round(100.0 * out["count"] / out["max"], 2)
        else:
            out["usage_percent"] = None
        try:
            path = self.proc("net/stat/nf_conntrack")
            out["stat"] = _procfs.parse_conntrack_stat(_read(path), source=path)
        except Unavailable as exc:
            out["stat"] = None
            self.warnings.append(str(exc))
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
                rulesets.append(_rulesets.parse_iptables_save(_read(path), family=family, backend="saved", source=path,
                                                              drops_only=self.drops_only))
        if self.nft_src:
            rulesets.append(_rulesets.parse_nft_json(_read(self.nft_src), source=self.nft_src))
        out = _summarise(rulesets, [], self.drops_only)
        out.update(complete=True, unread=[])
        return out

    # -- all of it -----------------------------------------------------------------------------------
    def collect(self, target: Target, layers: List[str]) -> Dict[str, Any]:
        started = time.time()
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
    """
    procs = []
    for job in jobs:
        try:
            procs.append((job, subprocess.Popen(job[3], stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
        except FileNotFoundError:
            unread.append(_unread(job, MISSING_BINARY, "%s is not installed (not found in PATH)" % job[3][0]))
        except OSError as exc:
            unread.append(_unread(job, UNREADABLE, "%s cannot be started: %s" % (job[3][0], exc.strerror)))
    for job, proc in procs:
        try:
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            unread.append(_unread(job, UNREADABLE, "%s did not finish within %d s" % (" ".join(job[3]), COMMAND_TIMEOUT)))
            continue
        if proc.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            last = lines[-1] if lines else ""
            cause = NO_ROOT if "ermission denied" in last or "Operation not permitted" in last else UNREADABLE
            unread.append(_unread(job, cause, "%s failed (exit %d): %s" % (" ".join(job[3]), proc.returncode, last[:200])))
            continue
        yield job, out.decode("utf-8", "replace")


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
