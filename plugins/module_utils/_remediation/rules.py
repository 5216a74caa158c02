# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Random-drop rules: find them, remove exactly them, or set one for a drill.

What a random drop is comes from _rulesets.is_random_drop (the statistic match in random or nth
mode with DROP/REJECT; nft numgen / meta random with drop/reject), applied to the rulesets as
iptables-save and nft print them. Removal changes nothing else:

- iptables (legacy and nft backends, IPv4 and IPv6): per table, one ``*-restore --noflush --wait``
  run of a generated script of ``-D CHAIN <spec as saved>`` lines, bottom rule first. The table is
  committed at once (no moment with a flushed or half-written table); if any rule is no longer
  there, the whole table's change is refused and nothing changes.
- native nftables: one ``nft -j -f -`` transaction deleting the rules by handle.

Afterwards each touched ruleset is read again and compared with the one read before minus the
removed rules (rule for rule, in order, policies included, counters left out).

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import json
import math
import re
import shutil
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.common import (
    BackupPart, Plan, RemediationError, Step, check_name, diff_entry, run)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import (
    IPT_PREFIX, IPTABLES_NFT_TABLES, NFT_DROP_VERDICTS, LiveRulesets, NativeTable, ReadError, Saved, nft_table_list,
    nftables, opaque_drops, read_live, read_nft, read_nft_listing, read_save)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import Target

Rule = Dict[str, Any]

FAMILIES = ("all", "ipv4", "ipv6", "inet", "arp", "bridge", "netdev")
BACKENDS = ("all", "auto", "legacy", "nft", "nft-native")
PROTOCOLS = ("tcp", "udp", "sctp", "icmp", "icmpv6")
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
NFT_FAMILY = {"ipv4": "ip", "ipv6": "ip6", "inet": "inet"}
BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
NFT_HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
NATIVE_DEFAULT_TABLE = "netdiag"
IPT_PROBABILITY_UNIT = 1 << 31  # libxt_statistic keeps the probability as lround(2^31 * p)
PROBABILITY_TOLERANCE = 1e-9
RESTORE_WAIT = "--wait=30"

_CHAIN_COUNTERS = re.compile(r"\s*\[\d+:\d+\]\s*$")
_RULE_COUNTERS = re.compile(r"^\[\d+:\d+\]\s*")
_NFT_HANDLE = re.compile(r"\s*# handle (\d+)\s*$")


# --------------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------------

def validate(params: Dict[str, Any]) -> Dict[str, Any]:
    """The module's parameters checked and completed with the defaults that depend on ``state``.

    Raises RemediationError for anything wrong; nothing has been read or changed at that point.
    """
    state = params.get("state")
    if state not in ("absent", "present"):
        raise RemediationError("state must be absent or present")
    v: Dict[str, Any] = {"state": state,
                         "table": check_name("table", params.get("table")),
                         "chain": check_name("chain", params.get("chain"))}
    family, backend = params.get("family"), params.get("backend")
    if family is not None and family not in FAMILIES:
        raise RemediationError("family must be one of %s" % ", ".join(FAMILIES))
    if backend is not None and backend not in BACKENDS:
        raise RemediationError("backend must be one of %s" % ", ".join(BACKENDS))
    if state == "absent":
        given = [k for k in ("probability", "protocol", "port") if params.get(k) is not None]
        if given:
            raise RemediationError("%s only with state=present" % ", ".join(given))
        backend = backend or "all"
        if backend == "auto":
            raise RemediationError("backend=auto only with state=present; state=absent takes all, legacy, nft or nft-native")
        v.update(family=family or "all", backend=backend)
        return v
    family, backend = family or "ipv4", backend or "auto"
    if v["chain"] is None:
        raise RemediationError("state=present needs chain")
    if family not in ("ipv4", "ipv6", "inet"):
        raise RemediationError("state=present takes family ipv4, ipv6 or inet (native nftables only)")
    if backend == "all":
        raise RemediationError("state=present takes one backend: auto, legacy, nft or nft-native")
    if family == "inet" and backend != "nft-native":
        raise RemediationError("family inet exists only in native nftables: use backend nft-native")
    probability = params.get("probability")
    if probability is None:
        raise RemediationError("state=present needs probability")
    try:
        probability = float(probability)
    except (TypeError, ValueError):
        raise RemediationError("probability must be a number in (0, 1], got %r" % (probability,))
    if math.isnan(probability) or not 0 < probability <= 1:
        raise RemediationError("probability must be in (0, 1], got %r" % probability)
    if backend != "nft-native" and round(probability * IPT_PROBABILITY_UNIT) == 0:
        raise RemediationError("probability %r is below what iptables can hold (2^-31)" % probability)
    if backend == "nft-native" and round(probability * 10 ** 9) == 0:
        raise RemediationError("probability %r is below what this module sets in nftables (10^-9)" % probability)
    protocol, port = params.get("protocol"), params.get("port")
    if protocol is not None and protocol not in PROTOCOLS:
        raise RemediationError("protocol must be one of %s" % ", ".join(PROTOCOLS))
    if protocol == "icmp" and family == "ipv6" or protocol == "icmpv6" and family == "ipv4":
        raise RemediationError("protocol %s does not exist in family %s" % (protocol, family))
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise RemediationError("port must be an integer in 1..65535, got %r" % (port,))
        if not 1 <= port <= 65535:
            raise RemediationError("port must be in 1..65535, got %d" % port)
        if protocol not in PORT_PROTOCOLS:
            raise RemediationError("port needs protocol %s" % ", ".join(PORT_PROTOCOLS))
    table = v["table"] or (NATIVE_DEFAULT_TABLE if backend == "nft-native" else "filter")
    if backend != "nft-native" and table not in BUILTIN_CHAINS:
        raise RemediationError("iptables table must be one of %s, got %r" % (", ".join(BUILTIN_CHAINS), table))
    if backend == "nft-native" and family in ("ipv4", "ipv6") and table in IPTABLES_NFT_TABLES:
        raise RemediationError("table %s of family %s belongs to iptables-nft: use backend nft, or another table name"
                               % (table, NFT_FAMILY[family]))
    v.update(family=family, backend=backend, table=table, probability=probability, protocol=protocol, port=port)
    return v


# --------------------------------------------------------------------------------------------------
# pure helpers (unit-tested on real dumps)
# --------------------------------------------------------------------------------------------------

def select_iptables(parsed: Dict[str, Any], table: Optional[str] = None, chain: Optional[str] = None) -> List[Rule]:
    """The random-drop rules of a parse_iptables_save result, in file order, optionally of one table/chain."""
    out = []
    for name, tab in parsed["tables"].items():
        if table is not None and name != table:
            continue
        out.extend(r for r in tab["rules"] if r.get("random_drop") and (chain is None or r["chain"] == chain))
    return out


def delete_scripts(rules: List[Rule]) -> Dict[str, str]:
    """iptables-restore --noflush input per table: ``-D CHAIN <spec as saved>``, bottom rule first."""
    by_table: Dict[str, List[Rule]] = {}
    for rule in rules:
        by_table.setdefault(rule["table"], []).append(rule)
    scripts = {}
    for table, chosen in by_table.items():
        lines = ["-D %s %s" % (r["chain"], r["spec"]) for r in sorted(chosen, key=lambda r: -r["line"])]
        scripts[table] = "\n".join(["*%s" % table] + lines + ["COMMIT", ""])
    return scripts


def without_lines(text: str, lines: Set[int]) -> str:
    """``text`` without the given 1-based lines (numbered as parse_iptables_save numbers them)."""
    return "".join(line + "\n" for n, line in enumerate(text.splitlines(), 1) if n not in lines)


def normalize_save(text: str, tables: Optional[Set[str]] = None) -> str:
    """iptables-save text as compared and shown: no comments, no counters, only ``tables`` if given."""
    out: List[str] = []
    keep = True
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            keep = tables is None or line[1:].strip() in tables
        if not keep:
            continue
        if line.startswith(":"):
            line = _CHAIN_COUNTERS.sub("", line)
        elif line.startswith("["):
            line = _RULE_COUNTERS.sub("", line)
        out.append(line)
    return "".join(line + "\n" for line in out)


def select_nft(parsed: Dict[str, Any], families: Optional[Set[str]] = None, table: Optional[str] = None,
               chain: Optional[str] = None) -> List[Rule]:
    """The random-drop rules of a parse_nft_json result, optionally of some families / one table / one chain."""
    return [r for r in parsed["rules"] if r.get("random_drop")
            and (families is None or r["family"] in families)
            and (table is None or r["table"] == table) and (chain is None or r["chain"] == chain)]


def nft_delete_batch(rules: List[Rule]) -> Dict[str, Any]:
    """One nft JSON transaction deleting ``rules`` by handle."""
    return {"nftables": [{"delete": {"rule": {"family": r["family"], "table": r["table"], "chain": r["chain"],
                                              "handle": r["handle"]}}} for r in rules]}


def nft_listing(text: str) -> Tuple[str, Dict[int, str]]:
    """``nft -a list table`` text -> (the text without handle comments, {rule handle: rule line})."""
    lines, rules = [], {}
    for raw in text.splitlines():
        m = _NFT_HANDLE.search(raw)
        line = raw[:m.start()] if m else raw.rstrip()
        if m and not line.rstrip().endswith("{"):
            rules[int(m.group(1))] = line.strip()
        lines.append(line)
    return "".join(line + "\n" for line in lines), rules


def nft_listing_without(text: str, handles: Set[int]) -> str:
    """``nft -a list table`` text without the rules of ``handles``, handle comments removed."""
    kept = []
    for raw in text.splitlines():
        m = _NFT_HANDLE.search(raw)
        if m and int(m.group(1)) in handles and not raw[:m.start()].rstrip().endswith("{"):
            continue
        kept.append(raw)
    return nft_listing("\n".join(kept))[0]


def nft_backup(family: str, table: str, listing: str) -> str:
    """An ``nft -f`` file that puts the table back as ``listing`` shows it, in one transaction."""
    return ("# nft -f this file: replaces table %s %s with the saved copy (written by netdiag.packetloss)\n"
            "table %s %s\ndelete table %s %s\n%s") % (family, table, family, table, family, table, listing)


def nft_predict(listing: str, family: str, table: str, chain: str, line: str, replace: Optional[int] = None,
                remove: Optional[Set[int]] = None) -> str:
    """Predicted ``nft list table`` text (no handles) once ``line`` is first in ``chain`` (or replaces the rule
    ``replace``) and the rules ``remove`` are gone; a chain or table that is not there is shown created."""
    created_chain = "\tchain %s {\n\t\ttype filter hook %s priority filter; policy accept;\n\t\t%s\n\t}\n" % (
        chain, chain.lower(), line)
    if not listing.strip():
        return "table %s %s {\n%s}\n" % (family, table, created_chain)
    remove = remove or set()
    out: List[str] = []
    in_chain = done = False
    lines = listing.splitlines()
    for index, raw in enumerate(lines):
        m = _NFT_HANDLE.search(raw)
        body = raw[:m.start()] if m else raw.rstrip()
        is_rule = bool(m) and not body.rstrip().endswith("{")
        handle = int(m.group(1)) if m else None
        if is_rule and handle in remove:
            continue
        if is_rule and replace is not None and handle == replace:
            out.append("\t\t" + line)
            done = True
            continue
        if in_chain and not done and replace is None and (is_rule or body.strip() == "}"):
            out.append("\t\t" + line)
            done = True
        if body.strip() == "}" and in_chain:
            in_chain = False
        if body.strip() in ("chain %s {" % chain, 'chain "%s" {' % chain):
            in_chain = True
        if not done and index == len(lines) - 1 and body.strip() == "}":
            out.append(created_chain.rstrip("\n"))
            done = True
        out.append(body)
    return "".join(x + "\n" for x in out)


def _quantized(probability: float) -> float:
    return round(probability * IPT_PROBABILITY_UNIT) / float(IPT_PROBABILITY_UNIT)


def ipt_drill_args(family: str, protocol: Optional[str], port: Optional[int], probability: float) -> List[str]:
    """The drill rule in the words iptables-save prints it with."""
    args: List[str] = []
    if protocol:
        args += ["-p", "ipv6-icmp" if protocol == "icmpv6" else protocol]
        if port is not None:
            args += ["-m", protocol, "--dport", str(port)]
    return args + ["-m", "statistic", "--mode", "random", "--probability", "%.11f" % _quantized(probability),
                   "-j", "DROP"]


_PROTOCOL_ALIASES = {"tcp": {"tcp", "6"}, "udp": {"udp", "17"}, "sctp": {"sctp", "132"}, "icmp": {"icmp", "1"},
                     "icmpv6": {"icmpv6", "ipv6-icmp", "icmp6", "58"}}


def is_drill_rule(rule: Rule, protocol: Optional[str], port: Optional[int]) -> bool:
    """A rule of exactly the drill's form: [-p P [-m P --dport N]] -m statistic --mode random ... -j DROP."""
    stat = rule.get("statistic") or {}
    if rule.get("target") != "DROP" or rule.get("goto") or rule.get("target_args") or stat.get("mode") != "random" \
            or stat.get("negated"):
        return False
    names = [m["name"] for m in rule["matches"]]
    for m in rule["matches"]:
        if m["negated"]:
            return False
        if m["name"] == "basic":
            if set(m["args"]) != ({"protocol"} if protocol else set()):
                return False
            if protocol and m["args"]["protocol"] not in _PROTOCOL_ALIASES[protocol]:
                return False
        elif m["name"] == "statistic":
            if set(m["args"]) != {"mode", "probability"}:
                return False
        elif m["name"] == protocol and m["name"] in PORT_PROTOCOLS:
            if m["args"] != ({"dport": str(port)} if port is not None else {}):
                return False
        else:
            return False
    return (port is None or protocol in names) and (protocol is None or "basic" in names)


def insert_rule_text(text: str, table: str, chain: str, spec: str) -> str:
    """Predicted iptables-save text after ``-I CHAIN 1 spec`` (for the diff in check mode)."""
    lines = text.splitlines()
    new = "-A %s %s" % (chain, spec)
    current, last_decl, table_end = None, None, None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if line.startswith("*"):
            current = line[1:].strip()
        elif current == table:
            body = _RULE_COUNTERS.sub("", line)
            if body.startswith("-A %s " % chain):
                return "\n".join(lines[:i] + [new] + lines[i:]) + "\n"
            if line.startswith(":"):
                last_decl = i
            if line == "COMMIT":
                table_end = i
                break
    if last_decl is not None:
        return "\n".join(lines[:last_decl + 1] + [new] + lines[last_decl + 1:]) + "\n"
    if table_end is not None:
        return "\n".join(lines[:table_end] + [new] + lines[table_end:]) + "\n"
    block = ["*%s" % table] + [":%s ACCEPT [0:0]" % c for c in BUILTIN_CHAINS.get(table, ())] + [new, "COMMIT"]
    return "\n".join(lines + block) + "\n"


def native_fraction(probability: float) -> Tuple[int, int]:
    """(mod, k) with k/mod = probability: the smallest power of ten up to 10^9 that holds it exactly, else 10^9.

    nft prints a numgen modulus of 2^31 or more as a negative number in its JSON: larger ones are not used.
    """
    for exponent in range(2, 10):
        mod = 10 ** exponent
        k = probability * mod
        if abs(k - round(k)) < 1e-6 or exponent == 9:
            return mod, max(1, int(round(k)))
    raise AssertionError("unreachable")


def native_selectors(protocol: Optional[str], port: Optional[int]) -> List[Dict[str, Any]]:
    """The match statements of a native drill rule, in the form nft lists them back."""
    if protocol is None:
        return []
    name = "ipv6-icmp" if protocol == "icmpv6" else protocol
    if port is not None:
        return [{"match": {"op": "==", "left": {"payload": {"protocol": protocol, "field": "dport"}}, "right": port}}]
    return [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": name}}]


def native_drill_rule(family: str, table: str, chain: str, protocol: Optional[str], port: Optional[int],
                      probability: float) -> Dict[str, Any]:
    mod, k = native_fraction(probability)
    expr = native_selectors(protocol, port) + [
        {"match": {"op": "<", "left": {"numgen": {"mode": "random", "mod": mod, "offset": 0}}, "right": k}},
        {"counter": None}, {"drop": None}]
    return {"family": family, "table": table, "chain": chain, "expr": expr}


def selector_text(expr: List[Any]) -> str:
    """A rule's statements other than its random comparison, counters and verdicts, as text (rule identity)."""
    words = []
    nft = nftables()  # native nft rules only: compiled where there are some
    for st in expr:
        if not isinstance(st, dict) or len(st) != 1:
            return "?"
        key, value = next(iter(st.items()))
        if key in ("counter", "accept") + NFT_DROP_VERDICTS:
            continue
        if key == "match" and isinstance(value, dict) and nft.random_source(value.get("left")):
            continue
        words.append(nft.render(st))
    return " ".join(words)


# --------------------------------------------------------------------------------------------------
# reading the live rulesets (inside the target's namespace)
# --------------------------------------------------------------------------------------------------

def _read(reader: Callable[..., Any], *args: Any) -> Any:
    """A live ruleset through the one reader (_kernel.netfilter); what cannot be read or parsed changes nothing."""
    try:
        return reader(*args)
    except ReadError as exc:
        raise RemediationError("cannot read the ruleset, nothing was changed: %s" % exc)
    except ParseError as exc:
        raise RemediationError("cannot read the ruleset: %s" % exc)


class IptRuleset:
    """One ``<prefix>-<backend>-save -c`` output and its parse (only the rules that can drop are parsed)."""

    def __init__(self, saved: Saved) -> None:
        self.family = saved.family
        self.backend = saved.backend
        self.text = saved.text
        self.parsed = saved.parsed
        self.prefix = "%s-%s" % (IPT_PREFIX[saved.family], saved.backend)

    @property
    def label(self) -> str:
        return "%s-save (%s)" % (self.prefix, self.family)

    def reread(self) -> "IptRuleset":
        return IptRuleset(_read(read_save, self.family, self.backend))


class NftTable:
    """One native nftables table: its JSON listing and its parse."""

    def __init__(self, table: NativeTable) -> None:
        self.family = table.family
        self.name = table.name
        self.data = table.data
        self.parsed = table.parsed
        self.listing = ""  # `nft -a list table` text, read only for tables that change

    def rule_expr(self, handle: int) -> List[Any]:
        for item in self.data.get("nftables", []) if isinstance(self.data, dict) else []:
            body = item.get("rule") if isinstance(item, dict) else None
            if isinstance(body, dict) and body.get("handle") == handle:
                return body.get("expr") or []
        return []

    def has_chain(self, chain: str) -> bool:
        return any(c["name"] == chain for c in self.parsed["chains"])


def _table(family: str, name: str) -> "NftTable":
    return NftTable(_read(read_nft, family, name))


def _listing(family: str, name: str) -> str:
    return _read(read_nft_listing, family, name)


class Scope:
    """Which rulesets to read and which of their random-drop rules to take: one random_drop run's bounds (family,
    backend, table, chain)."""

    def __init__(self, family: str, backend: str, table: Optional[str], chain: Optional[str]) -> None:
        self.ipt_families = [f for f in ("ipv4", "ipv6") if family in ("all", f)]
        self.ipt_backends = [b for b in ("legacy", "nft") if backend in ("all", b)]
        self.native = backend in ("all", "nft-native")
        self.native_families: Optional[Set[str]] = None if family == "all" else {NFT_FAMILY.get(family, family)}
        self.table = table
        self.chain = chain

    @classmethod
    def of(cls, v: Dict[str, Any]) -> "Scope":
        return cls(v["family"], v["backend"], v["table"], v["chain"])

    def native_table(self, family: str, name: str) -> bool:
        return self.native and (self.native_families is None or family in self.native_families) \
            and (self.table is None or name == self.table)

    def ruleset(self, family: str, backend: str) -> bool:
        """Whether the iptables ruleset of ``family`` and ``backend`` is in scope."""
        return family in self.ipt_families and backend in self.ipt_backends

    def takes_table(self, family: str, name: str) -> bool:
        """Whether the native table ``family name``, as read_live reads it, is in scope: a table the scope names, or an
        iptables-named table holding native rules of a family and backend in scope."""
        if self.native_table(family, name):
            return True
        ipt = [f for f, nft in _IPT_OF_NFT if nft == family]
        return bool(ipt) and name in IPTABLES_NFT_TABLES and self.ruleset(ipt[0], "nft")

    def chosen(self, rules: List[Rule]) -> List[Rule]:
        return [r for r in rules if (self.table is None or r["table"] == self.table)
                and (self.chain is None or r["chain"] == self.chain)]

    def covers(self, entry: Dict[str, Any]) -> bool:
        """Whether a ``removed`` entry of a plan is a rule this scope takes."""
        if self.table is not None and entry.get("table") != self.table or \
                self.chain is not None and entry.get("chain") != self.chain:
            return False
        if entry.get("backend") == "nft-native":
            return self.takes_table(entry.get("family"), entry.get("table"))
        return self.ruleset(entry.get("family"), entry.get("backend"))


_IPT_OF_NFT = (("ipv4", "ip"), ("ipv6", "ip6"))


def read_rulesets(scopes: List[Scope]) -> Tuple[List[IptRuleset], List[NftTable], List[str]]:
    """The iptables rulesets and nftables tables in any of ``scopes``, read at once by the reader iptables_facts uses
    (_kernel.netfilter.read_live), and its notes. What cannot be read fails the module (nothing is changed): a random
    drop may be in it."""
    families = tuple(f for f in ("ipv4", "ipv6") if any(f in s.ipt_families for s in scopes))
    backends = tuple(b for b in ("legacy", "nft") if any(b in s.ipt_backends for s in scopes))
    live = _read(read_live, families, backends, lambda fam, name: any(s.native_table(fam, name) for s in scopes))
    if live.unread:
        raise RemediationError("cannot read the rulesets to change, nothing was changed: %s"
                               % "; ".join("%s (%s)" % (u["reason"], u["cause"]) for u in live.unread))
    rulesets = [IptRuleset(saved) for saved in live.saves]
    native = [NftTable(table) for table in live.tables]
    unknown: List[Dict[str, Any]] = []
    for s in scopes:
        for u in opaque_drops([dict(t.parsed, rules=[r for r in t.parsed["rules"] if s.chain in (None, r["chain"])])
                               for t in native if s.takes_table(t.family, t.name)]):
            if u not in unknown:
                unknown.append(u)
    if unknown:
        raise RemediationError("cannot read the rulesets to change, nothing was changed: %s"
                               % "; ".join(u["reason"] for u in unknown))
    return rulesets, native, live.notes


def resolve_backend(family: str) -> str:
    """backend auto: the one the plain ``iptables`` / ``ip6tables`` command uses here."""
    prefix = IPT_PREFIX[family]
    if shutil.which(prefix):
        version = run([prefix, "-V"])
        if "nf_tables" in version:
            return "nft"
        if "legacy" in version:
            return "legacy"
    if shutil.which(prefix + "-nft"):
        return "nft"
    if shutil.which(prefix + "-legacy"):
        return "legacy"
    raise RemediationError("neither %s-nft nor %s-legacy is installed" % (prefix, prefix))


# --------------------------------------------------------------------------------------------------
# plans
# --------------------------------------------------------------------------------------------------

def _ipt_entry(rs: IptRuleset, rule: Rule) -> Dict[str, Any]:
    stat = rule.get("statistic") or {}
    return {"family": rs.family, "backend": rs.backend, "table": rule["table"], "chain": rule["chain"],
            "position": rule["position"], "spec": rule["spec"], "rule": "-A %s %s" % (rule["chain"], rule["spec"]),
            "target": rule.get("target"), "counters": rule.get("counters"),
            "statistic": dict((k, stat.get(k)) for k in ("mode", "probability", "every", "packet"))}


def _nft_entry(table: NftTable, rule: Rule, lines: Dict[int, str]) -> Dict[str, Any]:
    stat = rule.get("statistic") or {}
    text = lines.get(rule["handle"], rule["spec"])
    return {"family": rule["family"], "backend": "nft-native", "table": rule["table"], "chain": rule["chain"],
            "position": rule["position"], "handle": rule["handle"], "spec": text,
            "rule": "add rule %s %s %s %s" % (rule["family"], rule["table"], rule["chain"], text),
            "verdict": rule.get("verdict"), "counters": rule.get("counters"),
            "statistic": dict((k, stat.get(k)) for k in ("source", "mode", "probability", "every", "packet"))}


def policy_lines(parsed: Dict[str, Any], table: str) -> List[str]:
    """``:CHAIN POLICY [packets:bytes]`` for each built-in chain of ``table`` in a parse of iptables-save -c text."""
    chains = parsed["tables"].get(table, {}).get("chains", {})
    return [":%s %s [%d:%d]" % (name, c["policy"], c["packets"], c["bytes"]) for name, c in chains.items() if c["policy"]]


def with_policies(script: str, policies: List[str]) -> str:
    """A ``*table ... COMMIT`` restore script with ``policies`` declared right after its ``*table`` line."""
    head, _nl, rest = script.partition("\n")
    return "\n".join([head] + policies + [rest])


def _restore_step(rs: IptRuleset, table: str, script: str, what: str) -> Step:
    argv = [rs.prefix + "-restore", "--noflush", RESTORE_WAIT]

    def apply() -> None:
        if rs.backend != "legacy":
            run(argv, data=script)
            return
        # iptables-legacy (libiptc) zeroes the policy counters of the built-in chains of every table it commits, even
        # with --noflush and for chains the script does not name. So the built-in chains are declared with their
        # policy and counters as read just now, and restored with -c: nothing else changes (a user chain is never
        # declared: with --noflush that would flush it). Packets counted by a policy between that read and the
        # commit (a few milliseconds) are lost: the legacy tools cannot add to a policy counter.
        policies = policy_lines(_read(read_save, rs.family, rs.backend, True, table).parsed, table)
        run(argv[:1] + ["-c"] + argv[1:], data=with_policies(script, policies))
    return Step("%s --noflush: %s in table %s (%s)" % (rs.prefix + "-restore", what, table, rs.family), apply,
                {(rs.family, rs.backend, table)})


_COUNTED = re.compile(r"^(?:\[([0-9]+):([0-9]+)\]\s*(.*)|(:\S+\s+\S+)\s*\[([0-9]+):([0-9]+)\])$")


def counted_lines(text: str, skip: Optional[Set[int]] = None) -> List[Tuple[str, int, int]]:
    """(table and line without counters, packets, bytes) of each rule and chain line of iptables-save -c text that
    carries counters, in order, without the 1-based lines ``skip``."""
    out: List[Tuple[str, int, int]] = []
    table = ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("*"):
            table = line
        if skip and n in skip:
            continue
        m = _COUNTED.match(line)
        if m:
            if m.group(3) is not None:
                out.append(("%s %s" % (table, m.group(3)), int(m.group(1)), int(m.group(2))))
            else:
                out.append(("%s %s" % (table, m.group(4)), int(m.group(5)), int(m.group(6))))
    return out


def counters_lowered(before: str, skip: Set[int], after: str, added: Optional[str] = None) -> List[str]:
    """The rules and policies whose counters went down between ``before`` (without its lines ``skip``) and ``after``
    (without the rule ``added``, "*table -A CHAIN spec"): counters only grow, so a lower one was reset by the change.
    Compared only where the two list the same lines."""
    old, new = counted_lines(before, skip), [x for x in counted_lines(after) if x[0] != added]
    if [k for k, _p, _b in old] != [k for k, _p, _b in new]:
        return []
    return ["%s [%d:%d] -> [%d:%d]" % (k, p, b, p2, b2) for (k, p, b), (_k, p2, b2) in zip(old, new) if p2 < p or b2 < b]


def _nft_step(batch: Dict[str, Any], what: str) -> Step:
    data = json.dumps(batch)
    keys = set()
    for item in batch["nftables"]:
        body = next(iter(next(iter(item.values())).values()))
        keys.add((body["family"], "nft-native", body.get("table", body.get("name"))))

    def apply() -> None:
        run(["nft", "-j", "-f", "-"], data=data)
    return Step("nft -j -f - (one transaction): %s" % what, apply, keys)


def entry_key(entry: Dict[str, Any]) -> Tuple[Any, ...]:
    """The (family, backend, table) of a removed or added rule, as its Step's keys name it."""
    return (entry.get("family"), entry.get("backend"), entry.get("table"))


def _ipt_backup(rs: IptRuleset) -> BackupPart:
    return BackupPart("%s-%s.rules" % (rs.family, rs.backend), rs.text, "%s-restore -c < {path}" % rs.prefix,
                      {"family": rs.family, "backend": rs.backend, "format": "%s-save -c" % rs.prefix})


def _nft_backup(table: NftTable) -> BackupPart:
    content = nft_backup(table.family, table.name, nft_listing(table.listing)[0])
    what = {"family": table.family, "backend": "nft-native", "table": table.name, "format": "nft list table"}
    refuse = None
    if any(r.get("xt") for r in table.parsed["rules"]):
        refuse = ("table %s %s holds iptables-nft rules that nft shows only as opaque xt expressions, and neither nft "
                  "nor iptables-nft-restore can load the table back: no backup that restores it exactly can be "
                  "written. Run with backup=false to remove the random-drop rules by handle without one"
                  % (table.family, table.name))
    return BackupPart("nft-%s-%s.nft" % (table.family, table.name), content, "nft -f {path}", what, refuse=refuse)


def plan_absent(target: Target, v: Dict[str, Any]) -> Plan:
    return plan_absent_many(target, [v])


def _union(rules: List[Rule], scopes: List[Scope], key: Callable[[Rule], Any]) -> List[Rule]:
    """The rules any of ``scopes`` chooses, each once, in their order in ``rules``."""
    wanted = set(key(r) for s in scopes for r in s.chosen(rules))
    return [r for r in rules if key(r) in wanted]


def plan_absent_many(target: Target, vs: List[Dict[str, Any]]) -> Plan:
    """One plan removing the random-drop rules of every scope of ``vs`` (validated state=absent parameters) from one
    reading of the rulesets: one restore per iptables ruleset and table, one nft transaction, one backup and one
    re-read per ruleset changed. A rule in several scopes is removed once. ``removed`` is in the rulesets' order;
    Scope.covers tells which scope each entry is in."""
    plan = Plan(target)
    scopes = [Scope.of(v) for v in vs]
    rulesets, native, notes = read_rulesets(scopes)
    plan.warnings.extend(notes)
    checks: List[Tuple[IptRuleset, Set[int], Set[str]]] = []
    for rs in rulesets:
        mine = [s for s in scopes if s.ruleset(rs.family, rs.backend)]
        chosen = _union(select_iptables(rs.parsed), mine, lambda r: r["line"])
        if not chosen:
            continue
        split = [r for r in chosen if r.get("last_line")]
        if split:
            raise RemediationError(
                "%s: the random-drop rule '-A %s %s' holds a newline inside a quoted argument (lines %d-%d); "
                "%s-restore reads one rule per line and cannot delete it exactly; nothing was changed: delete it by "
                "hand (%s -t %s -D %s ... with the argument as it is)" % (
                    rs.label, split[0]["chain"], split[0]["spec"][:200], split[0]["line"], split[0]["last_line"],
                    rs.prefix, rs.prefix, split[0]["table"], split[0]["chain"]))
        plan.removed.extend(_ipt_entry(rs, r) for r in chosen)
        scripts = delete_scripts(chosen)
        for table, script in scripts.items():
            n = sum(1 for r in chosen if r["table"] == table)
            plan.steps.append(_restore_step(rs, table, script, "delete %d random-drop rule(s)" % n))
        lines = set(r["line"] for r in chosen)
        affected = set(scripts)
        plan.diffs.append(diff_entry(rs.label, normalize_save(rs.text, affected),
                                     normalize_save(without_lines(rs.text, lines), affected)))
        plan.backup.append(_ipt_backup(rs))
        checks.append((rs, lines, affected))
    native_chosen: List[Tuple[NftTable, List[Rule], List[Scope]]] = []
    for table in native:
        mine = [s for s in scopes if s.takes_table(table.family, table.name)]
        chosen = _union(select_nft(table.parsed), mine, lambda r: r["handle"])
        if not chosen:
            continue
        table.listing = _listing(table.family, table.name)
        rule_lines = nft_listing(table.listing)[1]
        plan.removed.extend(_nft_entry(table, r, rule_lines) for r in chosen)
        handles = set(r["handle"] for r in chosen)
        plan.diffs.append(diff_entry("nft list table %s %s" % (table.family, table.name), nft_listing(table.listing)[0],
                                     nft_listing_without(table.listing, handles)))
        plan.backup.append(_nft_backup(table))
        native_chosen.append((table, chosen, mine))
    if native_chosen:
        rules = [r for _t, chosen, _s in native_chosen for r in chosen]
        plan.steps.append(_nft_step(nft_delete_batch(rules), "delete %d random-drop rule(s) by handle in %s" % (
            len(rules), ", ".join("%s %s" % (t.family, t.name) for t, _c, _s in native_chosen))))
    plan.extra["scanned"] = [{"family": rs.family, "backend": rs.backend,
                              "rules": sum(t.get("rule_count", 0) for t in rs.parsed["tables"].values())}
                             for rs in rulesets] + [{"family": t.family, "backend": "nft-native", "table": t.name,
                                                     "rules": len(t.parsed["rules"])} for t in native]

    def verify() -> List[str]:
        problems: List[str] = []
        plan.diffs[:] = []
        for rs, lines, affected in checks:
            now = rs.reread()
            expected = normalize_save(without_lines(rs.text, lines))
            mine = [s for s in scopes if s.ruleset(rs.family, rs.backend)]
            left = _union(select_iptables(now.parsed), mine, lambda r: r["line"])
            if left:
                problems.append("%d random-drop rule(s) still in %s: %s" % (
                    len(left), rs.label, "; ".join("-A %s %s" % (r["chain"], r["spec"]) for r in left)))
            elif normalize_save(now.text) != expected:
                plan.warnings.append("%s changed between the read and the removal in ways this module did not make "
                                     "(another writer?); the random-drop rules are gone" % rs.label)
            lowered = counters_lowered(rs.text, lines, now.text)
            if lowered:
                problems.append("counters went down in %s (reset by the change): %s" % (rs.label, "; ".join(lowered[:5])))
            plan.diffs.append(diff_entry(rs.label, normalize_save(rs.text, affected), normalize_save(now.text, affected)))
        for table, chosen, mine in native_chosen:
            now = _table(table.family, table.name)
            handles = set(r["handle"] for r in chosen)
            left = [r for r in now.parsed["rules"] if r.get("handle") in handles]
            left += [r for r in _union(select_nft(now.parsed), mine, lambda r: r["handle"]) if r not in left]
            if left:
                problems.append("%d random-drop rule(s) still in nft table %s %s" % (len(left), table.family, table.name))
            listing = _listing(table.family, table.name)
            plan.diffs.append(diff_entry("nft list table %s %s" % (table.family, table.name),
                                         nft_listing(table.listing)[0], nft_listing(listing)[0]))
        return problems

    plan.verify = verify
    return plan


def plan_present(target: Target, v: Dict[str, Any]) -> Plan:
    if v["backend"] == "nft-native":
        return _plan_present_native(target, v)
    plan = Plan(target)
    family, table, chain = v["family"], v["table"], v["chain"]
    backend = resolve_backend(family) if v["backend"] == "auto" else v["backend"]
    prefix = "%s-%s" % (IPT_PREFIX[family], backend)
    rs = IptRuleset(_read(read_save, family, backend))
    tab = rs.parsed["tables"].get(table)
    if chain not in BUILTIN_CHAINS[table] and not (tab and chain in tab["chains"]):
        raise RemediationError("chain %s does not exist in table %s of %s: create it first, or use a built-in chain (%s)"
                               % (chain, table, prefix, ", ".join(BUILTIN_CHAINS[table])))
    args = ipt_drill_args(family, v["protocol"], v["port"], v["probability"])
    spec = " ".join(args)
    wanted = _quantized(v["probability"])
    same = [r for r in (tab["rules"] if tab else []) if r["chain"] == chain and is_drill_rule(r, v["protocol"], v["port"])]
    entry = {"family": family, "backend": backend, "table": table, "chain": chain,
             "position": same[0]["position"] if same else 1, "spec": spec, "rule": "-A %s %s" % (chain, spec),
             "target": "DROP", "statistic": {"mode": "random", "probability": wanted, "every": None, "packet": None}}
    script: List[str] = []
    if len(same) != 1 or abs(same[0]["statistic"]["probability"] - wanted) > PROBABILITY_TOLERANCE:
        # every rule of the drill's form goes (by spec, bottom first), the wanted one takes the first one's place
        script = ["-D %s %s" % (chain, r["spec"]) for r in reversed(same)]
        script.append("-I %s %d %s" % (chain, entry["position"], spec))
        plan.removed.extend(_ipt_entry(rs, r) for r in same)
        plan.added.append(entry)
    plan.extra["scanned"] = [{"family": family, "backend": backend,
                              "rules": sum(t.get("rule_count", 0) for t in rs.parsed["tables"].values())}]
    if not script:
        return plan
    if same:
        lines = without_lines(rs.text, set(r["line"] for r in same[1:])).splitlines()
        lines[same[0]["line"] - 1] = "-A %s %s" % (chain, spec)
        predicted = "\n".join(lines) + "\n"
    else:
        predicted = insert_rule_text(rs.text, table, chain, spec)
    text = "\n".join(["*%s" % table] + script + ["COMMIT", ""])
    plan.steps.append(_restore_step(rs, table, text, "set the drill rule in chain %s" % chain))
    plan.diffs.append(diff_entry(rs.label, normalize_save(rs.text, {table}), normalize_save(predicted, {table})))
    plan.backup.append(_ipt_backup(rs))

    def verify() -> List[str]:
        now = rs.reread()
        ntab = now.parsed["tables"].get(table)
        found = [r for r in (ntab["rules"] if ntab else []) if r["chain"] == chain
                 and is_drill_rule(r, v["protocol"], v["port"])]
        plan.diffs[:] = [diff_entry(rs.label, normalize_save(rs.text, {table}), normalize_save(now.text, {table}))]
        if len(found) != 1 or abs(found[0]["statistic"]["probability"] - wanted) > PROBABILITY_TOLERANCE:
            return ["expected one drill rule '-A %s %s' in table %s, found %d" % (chain, spec, table, len(found))]
        lowered = counters_lowered(rs.text, set(r["line"] for r in same), now.text, added="*%s -A %s %s" % (table, chain, spec))
        if lowered:
            return ["counters went down in %s (reset by the change): %s" % (rs.label, "; ".join(lowered[:5]))]
        return []

    plan.verify = verify
    return plan


def _plan_present_native(target: Target, v: Dict[str, Any]) -> Plan:
    plan = Plan(target)
    family, table, chain = NFT_FAMILY[v["family"]], v["table"], v["chain"]
    live = LiveRulesets()
    tables = nft_table_list(live)
    if tables is None:
        raise RemediationError("nf_tables is not available here: %s" % "; ".join(
            [u["reason"] for u in live.unread] + live.notes))
    exists = (family, table) in tables
    current: Optional[NftTable] = None
    listing = ""
    if exists:
        current = _table(family, table)
        listing = _listing(family, table)
        if any(r.get("xt") for r in current.parsed["rules"]):
            raise RemediationError("table %s %s holds iptables-nft rules: use backend nft" % (family, table))
    has_chain = current is not None and current.has_chain(chain)
    if not has_chain and chain.lower() not in NFT_HOOKS:
        raise RemediationError("chain %s does not exist in nft table %s %s: create it first, or name a chain after its "
                               "hook (%s) to have it created as a base chain" % (chain, family, table, ", ".join(NFT_HOOKS)))
    rule = native_drill_rule(family, table, chain, v["protocol"], v["port"], v["probability"])
    identity = selector_text(rule["expr"])
    same: List[Rule] = []
    if current is not None:
        same = [r for r in current.parsed["rules"] if r["chain"] == chain and r.get("random_drop")
                and r.get("verdict") == "drop" and (r.get("statistic") or {}).get("mode") == "random"
                and selector_text(current.rule_expr(r["handle"])) == identity]
    batch: List[Dict[str, Any]] = []
    if not exists:
        batch.append({"add": {"table": {"family": family, "name": table}}})
    if not has_chain:
        batch.append({"add": {"chain": {"family": family, "table": table, "name": chain, "type": "filter",
                                        "hook": chain.lower(), "prio": 0, "policy": "accept"}}})
    lines = nft_listing(listing)[1] if listing else {}
    for extra in same[1:]:
        batch.append({"delete": {"rule": {"family": family, "table": table, "chain": chain, "handle": extra["handle"]}}})
        plan.removed.append(_nft_entry(current, extra, lines))  # type: ignore[arg-type]
    mod, k = native_fraction(v["probability"])
    words = [nftables().render(st) for st in native_selectors(v["protocol"], v["port"])]
    text = " ".join(words + ["numgen random mod %d < %d counter packets 0 bytes 0 drop" % (mod, k)])
    entry = {"family": family, "backend": "nft-native", "table": table, "chain": chain, "position": 1, "spec": text,
             "rule": "add rule %s %s %s %s" % (family, table, chain, text), "verdict": "drop",
             "statistic": {"source": "numgen", "mode": "random", "probability": k / float(mod), "every": None,
                           "packet": None}}
    if not same:
        batch.append({"insert": {"rule": rule}})
        plan.added.append(entry)
    elif abs((same[0]["statistic"] or {}).get("probability", -1) - k / float(mod)) > PROBABILITY_TOLERANCE:
        replaced = dict(rule, handle=same[0]["handle"])
        batch.append({"replace": {"rule": replaced}})
        plan.removed.append(_nft_entry(current, same[0], lines))  # type: ignore[arg-type]
        entry["position"] = same[0]["position"]
        plan.added.append(entry)
    if not batch:
        return plan
    if current is not None:
        table_obj = current
        table_obj.listing = listing
        plan.backup.append(_nft_backup(table_obj))
    plan.steps.append(_nft_step({"nftables": batch}, "set the drill rule in %s %s %s" % (family, table, chain)))
    header = "nft list table %s %s" % (family, table)
    plan.diffs.append(diff_entry(header, nft_listing(listing)[0] if listing else "",
                                 nft_predict(listing, family, table, chain, text,
                                             replace=same[0]["handle"] if same and plan.added else None,
                                             remove=set(r["handle"] for r in same[1:]))))

    def verify() -> List[str]:
        now = _table(family, table)
        found = [r for r in now.parsed["rules"] if r["chain"] == chain and r.get("random_drop")
                 and selector_text(now.rule_expr(r["handle"])) == identity]
        after = nft_listing(_listing(family, table))[0]
        plan.diffs[:] = [diff_entry(header, nft_listing(listing)[0] if listing else "", after)]
        if len(found) != 1 or abs((found[0]["statistic"] or {}).get("probability", -1) - k / float(mod)) > PROBABILITY_TOLERANCE:
            return ["expected one drill rule in %s %s %s, found %d" % (family, table, chain, len(found))]
        return []

    plan.verify = verify
    return plan


def summary(plan: Plan, check_mode: bool = False) -> str:
    return changes_text(plan.removed if plan.steps else [], plan.added if plan.steps else [], check_mode,
                        plan.extra.get("state"))


def changes_text(removed: List[Dict[str, Any]], added: List[Dict[str, Any]], check_mode: bool,
                 state: Optional[str]) -> str:
    """The result's msg: the rules removed and added (or that would be), or why nothing changes."""
    def names(rules: List[Dict[str, Any]]) -> str:
        return "; ".join("%s %s %s: %s" % (r["family"], r["backend"], r["table"], r["rule"]) for r in rules[:10]) + \
            (" ..." if len(rules) > 10 else "")
    if not removed and not added:
        return "nothing to change: %s" % ("the drill rule is in place" if state == "present"
                                          else "no random-drop rule in scope")
    would = "would be " if check_mode else ""
    parts = []
    if removed:
        parts.append("%d rule(s) %sremoved: %s" % (len(removed), would, names(removed)))
    if added:
        parts.append("%d rule(s) %sadded: %s" % (len(added), would, names(added)))
    return "; ".join(parts)


def split(result: Dict[str, Any], plan: Optional[Plan], vs: List[Dict[str, Any]], check_mode: bool
          ) -> List[Dict[str, Any]]:
    """The result of one plan_absent_many run (``result`` as random_drop returns it, ``plan`` the plan it made) as the
    results of one random_drop run per scope of ``vs``, in their order: each with the rules of its scope (a rule in
    several scopes goes to the first), the steps and backup files of the rulesets they were in, its own msg. The
    diff and the warnings, made once, go to the first scope's result. A failure is the first scope's; the others
    say they failed with it."""
    if result.get("failed") or plan is None:
        first = dict(result)
        rest = dict(failed=True, changed=bool(result.get("changed")), msg=(
            "planned and applied in one with random_drop %s on the same target, which failed"
            % _args_text(vs[0])), warnings=[])
        return [first] + [dict(rest) for _v in vs[1:]]
    scopes = [Scope.of(v) for v in vs]
    own: List[List[Dict[str, Any]]] = [[] for _v in vs]
    for entry in result.get("removed") or []:
        for i, s in enumerate(scopes):
            if s.covers(entry):
                own[i].append(entry)
                break
    out = []
    for i, removed in enumerate(own):
        keys = set(entry_key(e) for e in removed)
        backups = [b for b in result.get("backup_files") or [] if any(
            b.get("family") == k[0] and b.get("backend") == k[1] and b.get("table", k[2]) == k[2] for k in keys)]
        r = dict(result, removed=removed, changed=bool(removed) and bool(result.get("changed")),
                 steps=[st.describe for st in plan.steps if st.keys & keys], backup_files=backups,
                 warnings=result.get("warnings", []) if i == 0 else [])
        r.pop("backup_file", None)
        if backups:
            r["backup_file"] = backups[0]["path"]
        if removed or result.get("changed"):
            r["msg"] = changes_text(removed, [], check_mode, "absent")
        if i and "diff" in r:
            r["diff"] = []
        out.append(r)
    return out


def _args_text(v: Dict[str, Any]) -> str:
    return "(%s)" % ", ".join("%s=%s" % (k, v[k]) for k in ("family", "backend", "table", "chain") if v.get(k) not in (None, "all"))


def build(params: Dict[str, Any]):
    """Validate ``params`` and return the plan builder execute() calls inside the target's namespace."""
    v = validate(params)

    def builder(target: Target) -> Plan:
        plan = plan_absent(target, v) if v["state"] == "absent" else plan_present(target, v)
        plan.extra["state"] = v["state"]
        return plan
    return builder


__all__ = ["validate", "build", "summary", "select_iptables", "delete_scripts", "normalize_save", "without_lines",
           "select_nft", "nft_delete_batch", "nft_listing", "nft_listing_without", "ipt_drill_args", "is_drill_rule",
           "native_fraction", "native_drill_rule", "selector_text", "plan_absent", "plan_absent_many", "plan_present",
           "changes_text", "split", "Scope", "RemediationError"]
