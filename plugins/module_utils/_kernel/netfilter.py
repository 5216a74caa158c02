# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall rulesets: the parser for `iptables-save [-c]` text (the one for `nft -j list ruleset` JSON is nftables.py),
what a drop and a random drop are, and the one reader of the live rulesets (read_live and the single-ruleset readers), whose texts and parses
iptables_facts and random_drop both take.

This module_utils is PRIVATE and should only be used by this collection.

Both produce rules with the same core keys (family, backend, table, chain, position,
spec, counters, statistic, random_drop) so that callers can treat them alike; the
iptables rule names its action "target", the nft rule "verdict". Only ParseError is
raised on bad input.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from ansible_collections.netdiag.packetloss.plugins.module_utils._common import fileio as _fileio
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import INT_MAX, ParseError, to_int, to_text
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.features import kernel_has
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.rtnetlink import nft_tables

Rule = Dict[str, Any]
# What drops a packet: the one definition (iptables targets are case-sensitive: a user chain "drop" is not DROP).
DROP_ACTIONS = ("DROP", "REJECT")  # iptables -j / -g
NFT_DROP_VERDICTS = ("drop", "reject")  # nft verdicts
RANDOM_MODES = ("random", "nth")
# An iptables statistic match seen through nft -j (an "xt" expression: no parameters shown). xt_statistic has only
# the modes random and nth, both random drops with a drop/reject verdict; which one and its numbers are unknown.
XT_STATISTIC: Dict[str, Any] = {"source": "xt statistic", "mode": "random or nth", "mod": None, "offset": None,
                                "op": None, "value": None, "probability": None, "every": None, "packet": None,
                                "negated": None}

# --------------------------------------------------------------------------------------
# iptables-save
# --------------------------------------------------------------------------------------

# Basic (non -m) matches, long and short spellings -> one name; "fragment" takes no value.
IPT_BASIC = {
    "-p": "protocol", "--protocol": "protocol",
    "-s": "source", "--source": "source", "--src": "source",
    "-d": "destination", "--destination": "destination", "--dst": "destination",
    "-i": "in-interface", "--in-interface": "in-interface",
    "-o": "out-interface", "--out-interface": "out-interface",
    "-f": "fragment", "--fragment": "fragment",
}
_IPT_OPTION = re.compile(r"^--?[A-Za-z]")
_IPT_COUNTERS = re.compile(r"^\[([0-9]+):([0-9]+)\]\s*")
_IPT_CHAIN = re.compile(r"^:(\S+)\s+(\S+)(?:\s+\[([0-9]+):([0-9]+)\])?\s*$")
_IPT_APPEND = re.compile(r"^(?:-A|--append)\s+(\S+)\s*")
# a whole rule line as iptables-save prints it: what drops_only counts and places without splitting it when its text
# holds neither a drop action nor a statistic match (DROP_ACTIONS unpacked: three substring tests are the fastest)
_IPT_PLAIN_RULE = re.compile(r"(?:\[([0-9]+):([0-9]+)\] +)?-A (\S+) ")
_DROP_0, _DROP_1 = DROP_ACTIONS
_IPT_SET_COUNTERS = re.compile(r"(?:^|\s)(?:-c|--set-counters)\s+\d+\s+\d+(?=\s|$)")


_SEGMENT = re.compile(r"""\s+|"((?:[^"\\]|\\.)*)"|'([^']*)'|\\(.)|([^\s"'\\]+)""", re.S)
_DQ_ESCAPE = re.compile(r"""\\([\\"])""")  # inside double quotes shlex unescapes only \\ and \"


_QUOTE_SCAN = re.compile(r"""[^"'\\]+|"(?:[^"\\]|\\.)*"|'[^']*'|\\.""", re.S)


def _count(digits: str, source: str, lineno: int) -> int:
    """A counter matched as [0-9]+, in the 64-bit range every counter of the collection keeps (_parse_errors.to_int's);
    the length test first, so that int() never meets a number past sys.get_int_max_str_digits()."""
    if len(digits) > 20:
        raise ParseError(source, lineno, "%r... (%d digits) does not fit in 64 bits" % (digits[:20], len(digits)))
    value = int(digits)
    if value > INT_MAX:
        raise ParseError(source, lineno, "%r does not fit in 64 bits" % digits)
    return value


def _open_quote(text: str) -> bool:
    """True when ``text`` ends inside a quoted string (as _split_words reads it): the string goes on on the next line.

    iptables-save prints a comment or other string argument between double quotes as it is, newlines included.
    """
    pos = 0
    for m in _QUOTE_SCAN.finditer(text):
        if m.start() != pos:
            break
        pos = m.end()
    return pos < len(text) and text[pos] in "\"'"


def _split_words(spec: str, source: str, lineno: int) -> Tuple[List[str], List[bool]]:
    """Split as a POSIX shell (shlex.split) does; also tell which words were quoted. Several times faster than shlex."""
    tokens: List[str] = []
    quoted: List[bool] = []
    word: Optional[List[str]] = None
    pos = 0
    for m in _SEGMENT.finditer(spec):
        if m.start() != pos:
            break
        pos = m.end()
        dq, sq, esc, plain = m.groups()
        if dq is None and sq is None and esc is None and plain is None:  # white space ends a word
            if word is not None:
                tokens.append("".join(word))
                word = None
            continue
        if word is None:
            word = []
            quoted.append(dq is not None or sq is not None)
        word.append(_DQ_ESCAPE.sub(r"\1", dq) if dq is not None else sq if sq is not None else esc if esc is not None else plain)
    if pos != len(spec):
        raise ParseError(source, lineno, "cannot split rule: unbalanced quotes or a trailing backslash")
    if word is not None:
        tokens.append("".join(word))
    return tokens, quoted


def _ipt_rule(tokens: List[str], quoted: List[bool], source: str, lineno: int) -> Dict[str, Any]:
    """Split the tokens after "-A CHAIN" into matches, target and -c counters.

    Each match is {"name": module, "args": {option without dashes: value}, "negated": [option, ...]}:
    a value is the option's argument, several arguments joined by one space
    ("tcp-flags": "SYN,RST,ACK SYN"), or True for an option without argument; an option
    preceded by "!" is listed in "negated" (its value is kept as printed, without "!").
    Options seen before any -m (e.g. "-p tcp --dport 22") belong to the "basic" match.
    A quoted token is always a value (--comment "-c 1 2").
    """
    basic: Dict[str, Any] = {"name": "basic", "args": {}, "negated": []}
    matches: List[Dict[str, Any]] = []
    current = basic
    target: Optional[str] = None
    goto = False
    target_args: Dict[str, Any] = {}
    counters: Optional[Dict[str, int]] = None
    negate = False
    i = 0

    def is_option(j: int) -> bool:
        return not quoted[j] and bool(_IPT_OPTION.match(tokens[j]))

    def value_at(j: int, what: str) -> str:
        if j >= len(tokens) or tokens[j] == "!":
            raise ParseError(source, lineno, "%s needs a value" % what[:40])
        return tokens[j]

    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            if negate:
                raise ParseError(source, lineno, "double '!'")
            negate = True
            i += 1
            continue
        if tok in ("-m", "--match"):
            current = {"name": value_at(i + 1, tok), "args": {}, "negated": []}
            matches.append(current)
            i += 2
        elif tok in ("-j", "--jump", "-g", "--goto"):
            if target is not None:
                raise ParseError(source, lineno, "more than one target")
            target, goto = value_at(i + 1, tok), tok in ("-g", "--goto")
            current = {"name": target, "args": target_args, "negated": []}
            i += 2
        elif tok in ("-c", "--set-counters"):
            counters = {"packets": to_int(value_at(i + 1, tok), source, lineno),
                        "bytes": to_int(value_at(i + 2, tok), source, lineno)}
            i += 3
        elif tok in IPT_BASIC:
            name = IPT_BASIC[tok]
            basic["args"][name] = True if name == "fragment" else value_at(i + 1, tok)
            if negate:
                basic["negated"].append(name)
            i += 1 if name == "fragment" else 2
        elif is_option(i):
            values = []
            i += 1
            while i < len(tokens) and tokens[i] != "!" and not is_option(i):
                values.append(tokens[i])
                i += 1
            name = tok.lstrip("-")
            value: Any = " ".join(values) if values else True
            old = current["args"].get(name)
            current["args"][name] = value if old is None else "%s, %s" % (old, value)
            if negate:
                current["negated"].append(name)
        else:
            raise ParseError(source, lineno, "unexpected %r" % tok[:40])
        negate = False
    if negate:
        raise ParseError(source, lineno, "'!' at the end of the rule")
    if basic["args"]:
        matches.insert(0, basic)
    return {"matches": matches, "target": target, "goto": goto, "target_args": target_args, "counters": counters}


def _ipt_statistic(matches: List[Dict[str, Any]], source: str, lineno: int) -> Optional[Dict[str, Any]]:
    """The -m statistic match as {"mode", "probability", "every", "packet", "negated"}, or None."""
    stat = next((m for m in matches if m["name"] == "statistic"), None)
    if stat is None:
        return None
    args = stat["args"]

    def number(key: str, kind: Any) -> Any:
        if key not in args:
            return None
        if not isinstance(args[key], str):
            raise ParseError(source, lineno, "statistic --%s needs a value" % key)
        try:
            return kind(args[key])
        except ValueError:
            raise ParseError(source, lineno, "statistic --%s %r is not a number" % (key, args[key][:40]))

    mode = args.get("mode")
    return {
        "mode": mode if isinstance(mode, str) else None,
        "probability": number("probability", float),
        "every": number("every", int),
        "packet": number("packet", int),
        "negated": any(k in stat["negated"] for k in ("probability", "every")),
    }


def parse_iptables_save(text: Union[str, bytes], family: str = "ipv4", backend: str = "legacy",
                        source: str = "iptables-save", default_table: str = "filter",
                        drops_only: bool = False, as_lines: bool = False) -> Dict[str, Any]:
    """`iptables-save [-c]` / `ip6tables-save` / `iptables-nft-save` text -> ruleset dict.

    Returns {"family", "backend", "tables": {table: {"chains": {chain: {"policy": "ACCEPT"|"DROP"|None,
    "packets", "bytes", "builtin"}}, "rules": [rule, ...]}}} with tables, chains and rules in
    file order. A rule is {family, backend, table, chain, position (1-based in its chain), line
    (in the text), spec (as printed after "-A CHAIN", counters removed), target (-j/-g, or None),
    goto, target_args, matches (see _ipt_rule), counters ({"packets", "bytes"} from "[p:b]" or
    "-c p b", else None), statistic (None or {"mode", "probability", "every", "packet",
    "negated"}), random_drop}.

    Comments and blank lines are skipped; rules outside "*table" (e.g. grep output) go to
    ``default_table``, chains used but not declared are created (policy None, builtin False).

    With ``drops_only``, only rules that can drop are parsed and listed: those whose text holds
    DROP, REJECT or a statistic match (a superset, checked before the rule is split, so that the
    many ACCEPT/jump rules of a large ruleset cost almost nothing). Positions stay the true ones,
    and each table's ``rule_count`` counts every rule.

    With ``as_lines``, each table also has ``lines``: {chain: [rule line, ...]} for every rule, drops_only or not, each
    as compact_line writes it (the compact form of ``rules: all``).
    """
    tables: Dict[str, Dict[str, Any]] = {}
    table: Optional[Dict[str, Any]] = None
    table_name = default_table

    positions: Dict[Tuple[str, str], int] = {}

    def open_table(name: str) -> Dict[str, Any]:
        table = {"chains": {}, "rules": [], "rule_count": 0}
        if as_lines:
            table["lines"] = {}
        return tables.setdefault(name, table)

    lines = to_text(text, source).splitlines()
    skip_to = 0
    for lineno, raw in enumerate(lines, 1):
        if lineno <= skip_to:  # the continuation lines of a rule with a quoted newline
            continue
        if drops_only and (raw[:1] == "[" or raw[:2] == "-A") and "statistic" not in raw and _DROP_0 not in raw \
                and _DROP_1 not in raw and not raw.count('"') % 2 and "'" not in raw and "\\" not in raw:
            plain = _IPT_PLAIN_RULE.match(raw)
            if plain:  # the many rules that cannot drop: counted and placed as below, not split
                current = table if table is not None else open_table(table_name)
                chain = plain.group(3)
                if chain not in current["chains"]:
                    current["chains"][chain] = {"policy": None, "builtin": False, "packets": 0, "bytes": 0}
                positions[(table_name, chain)] = positions.get((table_name, chain), 0) + 1
                current["rule_count"] += 1
                if as_lines:
                    spec = raw[plain.end():].strip()
                    current["lines"].setdefault(chain, []).append(
                        "[%s:%s] %s" % (plain.group(1), plain.group(2), spec) if plain.group(1) is not None else spec)
                continue
        extra = 0
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table_name = line[1:].strip()
            if not table_name or " " in table_name:
                raise ParseError(source, lineno, "bad table line %r" % line[:60])
            table = open_table(table_name)
            continue
        if line == "COMMIT":
            if table is None:
                raise ParseError(source, lineno, "COMMIT outside a table")
            table, table_name = None, default_table
            continue
        current = table if table is not None else open_table(table_name)
        if line.startswith(":"):
            m = _IPT_CHAIN.match(line)
            if not m:
                raise ParseError(source, lineno, "bad chain line %r" % line[:60])
            policy = None if m.group(2) == "-" else m.group(2)
            current["chains"][m.group(1)] = {
                "policy": policy, "builtin": policy is not None,
                "packets": _count(m.group(3), source, lineno) if m.group(3) else 0,
                "bytes": _count(m.group(4), source, lineno) if m.group(4) else 0}
            continue
        if line.count('"') % 2 or "'" in line or "\\" in line:  # a quoted argument may span lines
            while _open_quote(line) and lineno + extra < len(lines):
                extra += 1
                line += "\n" + lines[lineno + extra - 1]
            line = line.strip()
            skip_to = lineno + extra
        prefix = _IPT_COUNTERS.match(line)
        body = line[prefix.end():] if prefix else line
        append = _IPT_APPEND.match(body)
        if not append:
            raise ParseError(source, lineno, "expected '-A CHAIN ...', got %r" % line[:60])
        chain, spec = append.group(1), body[append.end():].strip()
        current["chains"].setdefault(chain, {"policy": None, "builtin": False, "packets": 0, "bytes": 0})
        position = positions[(table_name, chain)] = positions.get((table_name, chain), 0) + 1
        current["rule_count"] = current.get("rule_count", 0) + 1
        if as_lines:
            current["lines"].setdefault(chain, []).append(
                "[%s:%s] %s" % (prefix.group(1), prefix.group(2), spec) if prefix else spec)
        if drops_only and "statistic" not in spec and _DROP_0 not in spec and _DROP_1 not in spec:
            continue
        if '"' in spec or "'" in spec or "\\" in spec:
            tokens, quoted = _split_words(spec, source, lineno)
        else:  # the common case
            tokens = spec.split()
            quoted = [False] * len(tokens)
        parsed = _ipt_rule(tokens, quoted, source, lineno)
        if parsed["counters"] is not None:  # "-c P B" inside the rule (iptables-restore input)
            spec = _IPT_SET_COUNTERS.sub("", spec).strip()
        if prefix:
            parsed["counters"] = {"packets": _count(prefix.group(1), source, lineno),
                                  "bytes": _count(prefix.group(2), source, lineno)}
        rule: Rule = {"family": family, "backend": backend, "table": table_name, "chain": chain,
                      "position": position, "line": lineno, "spec": spec}
        if extra:
            rule["last_line"] = lineno + extra
        rule.update(parsed)
        rule["statistic"] = _ipt_statistic(parsed["matches"], source, lineno)
        rule["random_drop"] = is_random_drop(rule)
        current["rules"].append(rule)
    return {"family": family, "backend": backend, "tables": tables}


# --------------------------------------------------------------------------------------


def compact_line(rule: Rule) -> str:
    """One rule in the compact form: ``[packets:bytes] spec`` (the spec as parsed, without counters), or the spec
    alone when the rule has no counter; parse_iptables_save writes its ``lines`` the same way."""
    counters = rule.get("counters")
    return "[%s:%s] %s" % (counters["packets"], counters["bytes"], rule["spec"]) if counters else rule["spec"]


def action(rule: Rule) -> Optional[str]:
    """What the rule does with a packet it matches: its iptables target (-j/-g), or its nft verdict."""
    return rule.get("target") if "target" in rule else rule.get("verdict")


def drops(rule: Rule) -> bool:
    """True for a rule whose action drops what it matches: an iptables DROP or REJECT target, an nft drop or reject
    verdict (a verdict map is not: only some of its values may drop)."""
    return rule.get("target") in DROP_ACTIONS if "target" in rule else rule.get("verdict") in NFT_DROP_VERDICTS


def can_drop(rule: Rule) -> bool:
    """True for a rule that may drop packets (what ``rules: drops`` lists): a DROP/REJECT target or drop/reject
    verdict, a verdict map, any statistic match (random drops and random jumps alike), or an xt expression nft cannot
    name in a rule that may drop. The iptables-save side of ``drops_only`` is the same test on the text."""
    return rule.get("statistic") is not None or drops(rule) or action(rule) == "vmap" or \
        bool(rule.get("random_drop_unknown"))


def is_random_drop(rule: Rule) -> bool:
    """True iff the rule drops a random (or every-nth) share of packets.

    iptables: -m statistic --mode random|nth with -j/-g DROP or REJECT (a kube-proxy
    "statistic ... -j KUBE-SEP-X" is load balancing, not a drop). nft: a numgen / meta random
    comparison with a drop/reject verdict, or a numgen/meta random vmap sending some values to
    drop/reject.
    """
    stat = rule.get("statistic")
    if not isinstance(stat, dict) or stat.get("mode") not in RANDOM_MODES and stat.get("source") != XT_STATISTIC["source"]:
        return False
    if action(rule) == "vmap" and "target" not in rule:
        return bool(stat.get("probability"))
    return drops(rule)


# --------------------------------------------------------------------------------------
# the live rulesets: the one reader, for iptables_facts and random_drop alike
# --------------------------------------------------------------------------------------

IPTABLES_NFT_TABLES = ("filter", "nat", "mangle", "raw", "security")
IPT_PREFIX = {"ipv4": "iptables", "ipv6": "ip6tables"}
NFT_FAMILY = {"ipv4": "ip", "ipv6": "ip6"}
COMMAND_TIMEOUT = 60
CAP_NET_ADMIN = 12
NO_ROOT, MISSING_BINARY, UNREADABLE = "no_root", "missing_binary", "unreadable"
_INCOMPATIBLE = re.compile(r"^# Table `([^']+)' is incompatible", re.M)

Job = Tuple[str, str, str, List[str]]  # (kind "save" or "nft", family, backend or table, argv)


def save_argv(family: str, backend: str, table: Optional[str] = None) -> List[str]:
    return ["%s-%s-save" % (IPT_PREFIX[family], backend), "-c"] + (["-t", table] if table else [])


def nft_argv(family: str, table: str) -> List[str]:
    return ["nft", "-j", "list", "table", family, table]


class Saved:
    """One ``<iptables|ip6tables>-<legacy|nft>-save -c`` output as read, and its parse."""

    def __init__(self, family: str, backend: str, text: str, drops_only: bool = True, table: Optional[str] = None,
                 lines: bool = False) -> None:
        self.family, self.backend, self.text = family, backend, text
        self.command = " ".join(save_argv(family, backend, table))
        self.parsed = parse_iptables_save(text, family=family, backend=backend, source=self.command, drops_only=drops_only,
                                          as_lines=lines)


def nftables() -> Any:
    """The nft JSON parser (nftables.py), compiled only where a native nftables table is read."""
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import nftables as _nftables
    return _nftables


class NativeTable:
    """One native nftables table: its ``nft -j list table`` output as read, the JSON, and its parse."""

    def __init__(self, family: str, name: str, text: str) -> None:
        self.family, self.name, self.text = family, name, text
        self.command = " ".join(nft_argv(family, name))
        try:
            self.data = json.loads(text or '{"nftables": []}')
        except ValueError as exc:
            raise ParseError(self.command, None, "not JSON: %s" % str(exc)[:80])
        self.parsed = nftables().parse_nft_json(self.data, source=self.command)


class LiveRulesets:
    """What read_live read: iptables-save outputs, native nft tables (each with its parse), what could not be read."""

    def __init__(self) -> None:
        self.saves: List[Saved] = []
        self.tables: List[NativeTable] = []
        self.unread: List[Dict[str, Any]] = []
        self.notes: List[str] = []
        self.warnings: List[str] = []


class ReadError(Exception):
    """A live ruleset that could not be read: ``entry`` as in LiveRulesets.unread (cause, reason, ...)."""

    def __init__(self, entry: Dict[str, Any]) -> None:
        super(ReadError, self).__init__(entry["reason"])
        self.entry = entry


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
    results = _fileio.run_bounded([proc for _job, proc in started], _fileio.RULESET_MAX, COMMAND_TIMEOUT)
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


def _one(job: Job) -> str:
    unread: List[Dict[str, Any]] = []
    for _job, output in _run_all([job], unread):
        return output
    raise ReadError(unread[0])


def read_save(family: str, backend: str, drops_only: bool = True, table: Optional[str] = None) -> Saved:
    """One iptables ruleset (of one ``table`` if given), read on its own; ReadError when it cannot be."""
    argv = save_argv(family, backend, table)
    return Saved(family, backend, _one(("save", family, backend, argv)), drops_only, table)


def read_nft(family: str, table: str) -> NativeTable:
    """One native nftables table; ReadError when it cannot be read."""
    return NativeTable(family, table, _one(("nft", family, table, nft_argv(family, table))))


def read_nft_listing(family: str, table: str) -> str:
    """``nft -a list table`` text of one table (rules with their handles, for diffs and backups); ReadError."""
    return _one(("nft", family, table, ["nft", "-a", "list", "table", family, table]))


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


def _proc_text(path: str) -> Optional[str]:
    try:
        return _fileio.read_text(path, _fileio.PROC_MAX)
    except _fileio.InputError:
        return None


def _net_admin() -> Optional[bool]:
    """Whether this process has CAP_NET_ADMIN (root, or the capability), from /proc/self/status; None if unknown."""
    status = _proc_text("/proc/self/status")
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", status, re.M) if status is not None else None
    return bool(int(m.group(1), 16) >> CAP_NET_ADMIN & 1) if m else None


def nft_table_list(live: LiveRulesets) -> Optional[List[Tuple[str, str]]]:
    """(family, name) of every nf_tables table here, or None when there are none to read (``live.notes`` says why)
    or they cannot be listed (one ``live.unread`` entry: never taken as clean).

    Over netlink (rtnetlink.nft_tables). When nf_tables does not answer there, with ``nft -j list tables``: nft
    saying nf_tables is not supported, or nft missing on a kernel whose config has no nf_tables, means there is none.
    """
    tables = nft_tables()
    if tables is not None:
        return tables
    job: Job = ("nft", "", "", ["nft", "-j", "list", "tables"])
    unread: List[Dict[str, Any]] = []
    for _job, output in _run_all([job], unread):
        try:
            data = json.loads(output or '{"nftables": []}')
        except ValueError as exc:
            unread.append(_unread(job, UNREADABLE, "nft -j list tables printed no JSON: %s" % str(exc)[:80]))
            break
        items = data.get("nftables") if isinstance(data, dict) else None
        live.notes.append("nf_tables did not answer over netlink: its tables were listed with nft -j list tables")
        return [(str(t["family"]), str(t["name"])) for t in (i.get("table") for i in items or [] if isinstance(i, dict))
                if isinstance(t, dict) and "family" in t and "name" in t]
    entry = unread[0]
    if "not supported" in entry["reason"] or entry["cause"] == MISSING_BINARY and kernel_has("NF_TABLES", "nf_tables") is False:
        live.notes.append("nf_tables did not answer over netlink and this kernel has none (%s): no iptables-nft or native "
                          "nftables table was looked for" % entry["reason"])
        return None
    live.unread.append(dict(entry, family=None, backend="nft", table=None,
                            reason="nf_tables did not answer over netlink, and its tables could not be listed: %s"
                                   % entry["reason"]))
    return None


def _any_table(family: str, table: str) -> bool:
    return True


def read_live(families: Tuple[str, ...] = ("ipv4", "ipv6"), backends: Tuple[str, ...] = ("legacy", "nft"),
              native: Callable[[str, str], bool] = _any_table, drops_only: bool = True,
              lines: bool = False) -> LiveRulesets:
    """Read and parse the live rulesets of this network namespace: the one reader behind iptables_facts and
    random_drop (``drops_only``, ``lines``: see parse_iptables_save's drops_only and as_lines).

    iptables: ``<iptables|ip6tables>-<legacy|nft>-save -c`` for each family in ``families`` and backend in
    ``backends`` that holds tables (legacy: /proc/net/ip{,6}_tables_names; nft: the nf_tables tables named as
    iptables names them, see nft_table_list). nftables: ``nft -j list table`` for each other table that
    ``native(family, table)`` takes, and for each iptables-named table that iptables-nft-save calls incompatible
    (it holds native nft rules; iptables' own rules in it show there as "xt" expressions) if its family is in
    scope or ``native`` takes it. All commands run at once.

    Whatever could not be read is in ``unread``: one entry per ruleset (``family``, ``backend``, ``table``,
    ``command``, ``cause`` - no_root, missing_binary or unreadable - and ``reason``); the nft tables holding drop
    rules nft cannot name are for the caller to judge (opaque_drops: all of them for the facts, those of the chains
    in scope for a removal). Without CAP_NET_ADMIN nothing is read, and that is one entry with cause no_root. A
    ruleset that does not parse raises ParseError.
    """
    live = LiveRulesets()
    if _net_admin() is False:
        live.unread.append({"family": None, "backend": None, "table": None, "command": None, "cause": NO_ROOT,
                            "reason": "not root: reading the iptables and nftables rulesets needs root (CAP_NET_ADMIN); "
                                      "this runs as uid %d without it" % os.geteuid()})
        return live
    tables = nft_table_list(live)
    jobs: List[Job] = []
    for family, names_file in (("ipv4", "/proc/net/ip_tables_names"), ("ipv6", "/proc/net/ip6_tables_names")):
        nft_family = NFT_FAMILY[family]
        legacy: List[str] = []
        if family in families and "legacy" in backends:
            try:
                legacy = _fileio.read_text(names_file, _fileio.PROC_MAX).split()
            except _fileio.InputError as exc:
                if os.path.exists(names_file):  # a missing file: ip_tables is not loaded, there is no legacy table
                    live.unread.append({"family": family, "backend": "legacy", "table": None, "command": None,
                                        "cause": UNREADABLE, "reason": str(exc)})
        ipt_nft = [n for f, n in tables or [] if f == nft_family and n in IPTABLES_NFT_TABLES]
        wants_nft = family in families and "nft" in backends
        if legacy:
            jobs.append(("save", family, "legacy", save_argv(family, "legacy")))
        # iptables-nft-save also tells which iptables-named tables hold native rules (incompatible)
        if ipt_nft and (wants_nft or any(native(nft_family, n) for n in ipt_nft)):
            jobs.append(("save", family, "nft", save_argv(family, "nft")))
        if legacy and ipt_nft and wants_nft:
            live.warnings.append("both iptables backends hold %s tables here: legacy %s, nft %s; both are read"
                                 % (family, ", ".join(sorted(legacy)), ", ".join(sorted(ipt_nft))))
    for fam, name in tables or []:
        if not (fam in ("ip", "ip6") and name in IPTABLES_NFT_TABLES) and native(fam, name):
            jobs.append(("nft", fam, name, nft_argv(fam, name)))
    incompatible: List[Job] = []
    for job, output in _run_all(jobs, live.unread):
        kind, family, which, _argv = job
        if kind == "nft":
            live.tables.append(NativeTable(family, which, output))
            continue
        fam = NFT_FAMILY[family]
        in_scope = family in families and which in backends
        for name in _INCOMPATIBLE.findall(output):  # native nft rules in an iptables-named table
            if in_scope or native(fam, name):
                incompatible.append(("nft", fam, name, nft_argv(fam, name)))
        if in_scope:
            live.saves.append(Saved(family, which, output, drops_only, lines=lines))
    for job, output in _run_all(incompatible, live.unread):
        live.tables.append(NativeTable(job[1], job[2], output))
    return live
