# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collectors, one per layer of the seed's walk. Read-only; they run on the target.

Each collector returns a dict with ``available`` (bool); when a layer cannot be read,
``available`` is False and ``reason`` says why, and the other layers are still returned.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._netlink import Netlink, driver_stats
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
    except (Unavailable, ParseError, LookupError, RuntimeError) as exc:
        return {"available": False, "reason": str(exc)}
    out["available"] = True
    return out


def _run(argv: List[str]) -> str:
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=COMMAND_TIMEOUT, check=False)
    except FileNotFoundError:
        raise Unavailable("%s is not installed" % argv[0])
    except subprocess.TimeoutExpired:
        raise Unavailable("%s did not finish within %d s" % (" ".join(argv), COMMAND_TIMEOUT))
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Unavailable("%s failed (exit %d): %s" % (" ".join(argv), proc.returncode, err[-1] if err else ""))
    return proc.stdout.decode("utf-8", "replace")


class Collector:
    """Reads the layers of one target: the live system, or captured files (proc_root, src)."""

    def __init__(self, proc_root: Optional[str] = None, interfaces: Optional[List[str]] = None,
                 ethtool: bool = True, tc_src: Optional[str] = None, iptables_src: Optional[str] = None,
                 ip6tables_src: Optional[str] = None, nft_src: Optional[str] = None) -> None:
        self.proc_root = proc_root
        self.live = proc_root is None
        self.interfaces = interfaces
        self.ethtool = ethtool
        self.tc_src = tc_src
        self.iptables_src = iptables_src
        self.ip6tables_src = ip6tables_src
        self.nft_src = nft_src
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
        rulesets: List[Dict[str, Any]] = []
        notes: List[str] = []
        nft_native, nft_ipt_tables = self._nft_native(notes)
        for family, names_file, prefix in (("ipv4", "net/ip_tables_names", "iptables"),
                                           ("ipv6", "net/ip6_tables_names", "ip6tables")):
            legacy_tables = self._legacy_tables(names_file)
            if legacy_tables:
                rulesets.append(self._save(prefix, "legacy", family))
            if nft_ipt_tables.get(family):
                rulesets.append(self._save(prefix, "nft", family))
            if legacy_tables and nft_ipt_tables.get(family):
                self.warnings.append("both iptables backends hold %s tables here: legacy %s, nft %s; both are read"
                                     % (family, ", ".join(sorted(legacy_tables)), ", ".join(sorted(nft_ipt_tables[family]))))
        if nft_native is not None:
            rulesets.append(nft_native)
        return _summarise(rulesets, notes)

    def _legacy_tables(self, names_file: str) -> List[str]:
        try:
            return _read(self.proc(names_file)).split()
        except Unavailable:
            return []

    def _save(self, prefix: str, backend: str, family: str) -> Dict[str, Any]:
        binary = "%s-%s-save" % (prefix, backend)
        if shutil.which(binary) is None:
            raise Unavailable("%s tables exist (%s, %s backend) but %s is not installed" % (prefix, family, backend, binary))
        return _rulesets.parse_iptables_save(_run([binary, "-c"]), family=family, backend=backend, source=binary + " -c")

    def _nft_native(self, notes: List[str]):
        """The nftables ruleset; tables that iptables-nft manages are set aside (read via iptables-nft-save)."""
        if shutil.which("nft") is None:
            notes.append("nft is not installed: native nftables rules not read")
            return None, self._guess_nft_ipt_tables()
        data = json.loads(_run(["nft", "-j", "list", "ruleset"]) or '{"nftables": []}')
        parsed = _rulesets.parse_nft_json(data, source="nft -j list ruleset")
        ipt: Dict[str, List[str]] = {}
        fam_map = {"ip": "ipv4", "ip6": "ipv6"}
        owned = set()
        for table in parsed.get("tables", []):
            fam = fam_map.get(table.get("family"))
            key = (table.get("family"), table.get("name"))
            if fam and table.get("name") in IPTABLES_NFT_TABLES and _managed_by_iptables_nft(parsed, key):
                ipt.setdefault(fam, []).append(table["name"])
                owned.add(key)
        for part in ("tables", "chains", "rules"):
            parsed[part] = [x for x in parsed.get(part, [])
                            if (x.get("family"), x.get("name") if part == "tables" else x.get("table")) not in owned]
        return parsed, ipt

    def _guess_nft_ipt_tables(self) -> Dict[str, List[str]]:
        return {"ipv4": ["filter"], "ipv6": ["filter"]} if shutil.which("iptables-nft-save") else {}

    def _rulesets_from_files(self) -> Dict[str, Any]:
        rulesets = []
        for path, family in ((self.iptables_src, "ipv4"), (self.ip6tables_src, "ipv6")):
            if path:
                rulesets.append(_rulesets.parse_iptables_save(_read(path), family=family, backend="saved", source=path))
        if self.nft_src:
            rulesets.append(_rulesets.parse_nft_json(_read(self.nft_src), source=self.nft_src))
        return _summarise(rulesets, [])

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


def _managed_by_iptables_nft(parsed: Dict[str, Any], key: Tuple[str, str]) -> bool:
    """iptables-nft tables hold xt expressions, or only iptables' base chain names."""
    if any((r.get("family"), r.get("table")) == key and r.get("xt") for r in parsed.get("rules", [])):
        return True
    names = set(c.get("name") for c in parsed.get("chains", []) if (c.get("family"), c.get("table")) == key and c.get("base"))
    return bool(names) and names <= {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}


def _summarise(rulesets: List[Dict[str, Any]], notes: List[str]) -> Dict[str, Any]:
    rules: List[Dict[str, Any]] = []
    for rs in rulesets:
        # every rule is listed once, in ``rules``; the rulesets keep tables, chains and policies
        if isinstance(rs.get("tables"), dict):  # iptables-save: rules per table
            for table in rs["tables"].values():
                rules.extend(table.pop("rules", []))
        else:
            rules.extend(rs.pop("rules", []))
    return {
        "rulesets": rulesets,
        "rules": rules,
        "random_drop_rules": [r for r in rules if r.get("random_drop")],
        "rule_count": len(rules),
        "notes": notes,
    }
