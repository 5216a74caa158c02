# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parser of `nft -j list ruleset` (and `nft -j list table`) JSON: native nftables rules as netfilter.py's rules,
with the same core keys and the same definitions of a drop and a random drop (netfilter.drops, is_random_drop).

Apart from netfilter.py, which loads it only where a native nftables table is read: module code reaches a target in
a zip and is compiled on every run, and most hosts hold iptables rules only.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple, Union

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import INT_MAX, INT_MIN, ParseError, to_text
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import (
    DROP_ACTIONS, NFT_DROP_VERDICTS, XT_STATISTIC, Rule, is_random_drop)


NFT_VERDICTS = ("accept", "drop", "reject", "continue", "return", "queue")
_NFT_BINOPS = ("&", "|", "^", "<<", ">>")
_U32_RANGE = 1 << 32
_MAX_DEPTH = 40


def render(e: Any, depth: int = 0) -> str:
    """A short nft-like text for one JSON expression/statement (enough to recognise a rule)."""
    if depth > _MAX_DEPTH:
        return "..."
    if e is None:
        return ""
    if isinstance(e, bool):
        return "true" if e else "false"
    if isinstance(e, str):
        return e
    if isinstance(e, (int, float)):
        try:
            return str(e)
        except ValueError:  # an int longer than sys.get_int_max_str_digits()
            return "<big number>"
    if isinstance(e, list):
        return "{ %s }" % ", ".join(
            " : ".join(render(p, depth + 1) for p in x) if isinstance(x, list) and len(x) == 2
            else render(x, depth + 1) for x in e)
    if not isinstance(e, dict):
        return "?"
    if len(e) != 1:
        return " ".join("%s %s" % (k, render(v, depth + 1)) for k, v in e.items())
    key, v = next(iter(e.items()))

    def r(x: Any) -> str:
        return render(x, depth + 1)

    d: Dict[str, Any] = v if isinstance(v, dict) else {}
    if key == "match" and d:
        op = d.get("op", "==")
        return "%s %s" % (r(d.get("left")), r(d.get("right"))) if op in ("==", "in") else \
            "%s %s %s" % (r(d.get("left")), op, r(d.get("right")))
    if key in ("jump", "goto") and d:
        return "%s %s" % (key, r(d.get("target")))
    if key == "payload" and d:
        if "protocol" in d:
            return "%s %s" % (r(d.get("protocol")), r(d.get("field")))
        return "@%s,%s,%s" % (r(d.get("base")), r(d.get("offset")), r(d.get("len")))
    if key == "meta" and d:
        return "meta %s" % r(d.get("key"))
    if key == "ct" and d:
        return " ".join(x for x in ("ct", r(d.get("dir")), r(d.get("key"))) if x)
    if key == "numgen" and d:
        off = d.get("offset")
        return "numgen %s mod %s%s" % (r(d.get("mode")), r(d.get("mod")), " offset %s" % r(off) if off else "")
    if key in _NFT_BINOPS and isinstance(v, list) and len(v) == 2:
        return "%s %s %s" % (r(v[0]), key, r(v[1]))
    if key == "prefix" and d:
        return "%s/%s" % (r(d.get("addr")), r(d.get("len")))
    if key == "range" and isinstance(v, list) and len(v) == 2:
        return "%s-%s" % (r(v[0]), r(v[1]))
    if key == "set" and isinstance(v, list):
        return r(v)
    if key == "concat" and isinstance(v, list):
        return " . ".join(r(x) for x in v)
    if key in ("map", "vmap") and d:
        return "%s %s %s" % (r(d.get("key")), key, r(d.get("data")))
    if key == "counter":
        if d:
            return "counter packets %s bytes %s" % (r(d.get("packets")), r(d.get("bytes")))
        return "counter name %s" % r(v) if v is not None else "counter"
    if key == "reject" and d:
        return " ".join(x for x in ("reject with", r(d.get("type")), r(d.get("expr"))) if x)
    if key == "limit" and d:
        return "limit rate %s/%s" % (r(d.get("rate")), r(d.get("per")))
    if key == "xt":
        return " ".join(x for x in ("xt", r(d.get("type")), r(d.get("name"))) if x)
    if key == "mangle" and d:
        return "%s set %s" % (r(d.get("key")), r(d.get("value")))
    if key in ("snat", "dnat", "redirect", "masquerade", "tproxy") and d and "addr" in d:
        port = d.get("port")
        return "%s to %s%s" % (key, r(d.get("addr")), ":%s" % r(port) if port is not None else "")
    if key == "log" and d and "prefix" in d:
        return 'log prefix "%s"' % r(d.get("prefix"))
    if key == "elem" and d:
        return r(d.get("val"))
    if v is None:
        return key
    if d:
        return "%s %s" % (key, " ".join("%s %s" % (k, r(x)) for k, x in d.items()))
    return "%s %s" % (key, r(v))


def random_source(e: Any) -> Optional[Dict[str, Any]]:
    """numgen / meta random (optionally masked with &) -> the range of values it yields."""
    if not isinstance(e, dict) or len(e) != 1:
        return None
    key, v = next(iter(e.items()))
    if key == "numgen" and isinstance(v, dict):
        mod, offset = v.get("mod"), v.get("offset", 0)
        if not _is_int(mod) or not _is_int(offset) or mod <= 0:
            return None
        return {"source": "numgen", "mode": "random" if v.get("mode") == "random" else "nth",
                "mod": mod, "offset": offset, "lo": offset, "hi": offset + mod - 1}
    if key == "meta" and isinstance(v, dict) and v.get("key") == "random":
        return {"source": "meta random", "mode": "random", "mod": None, "offset": None, "lo": 0, "hi": _U32_RANGE - 1}
    if key == "&" and isinstance(v, list) and len(v) == 2 and _is_int(v[1]):
        inner = random_source(v[0])
        mask = v[1]
        if inner and inner["source"] == "meta random" and 0 <= mask < _U32_RANGE and not (mask & (mask + 1)):
            inner["hi"] = mask  # a low-bits mask keeps the value uniform on [0, mask]
            return inner
    return None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _members(lo: int, hi: int, right: Any) -> Optional[int]:
    """How many of lo..hi equal / fall in ``right`` (int, {"range"}, {"set": [...]}, list)."""
    if _is_int(right):
        return 1 if lo <= right <= hi else 0
    if isinstance(right, dict) and len(right) == 1:
        key, v = next(iter(right.items()))
        if key == "range" and isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v):
            return max(0, min(hi, v[1]) - max(lo, v[0]) + 1)
        if key == "set":
            return _members(lo, hi, v)
        if key == "elem" and isinstance(v, dict):
            return _members(lo, hi, v.get("val"))
    if isinstance(right, list):
        counts = [_members(lo, hi, x) for x in right]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    return None


def _fraction(lo: int, hi: int, op: str, right: Any) -> Optional[float]:
    """Share of the uniform values lo..hi for which ``value op right`` holds."""
    total = hi - lo + 1
    if op in ("<", "<=", ">", ">=") and _is_int(right):
        if op in ("<", "<="):
            count = max(0, min(hi, right - (op == "<")) - lo + 1)
        else:
            count = max(0, hi - max(lo, right + (op == ">")) + 1)
        return count / total
    count = _members(lo, hi, right)
    if count is None:
        return None
    if op in ("==", "in"):
        return count / total
    if op == "!=":
        return (total - count) / total
    return None


def _nft_statistic(stmts: List[Any]) -> Optional[Dict[str, Any]]:
    """numgen / meta random use in a rule: from a match (with probability), a vmap (share of
    values mapped to drop/reject) or anywhere else (probability None)."""
    stat: Optional[Dict[str, Any]] = None
    for st in stmts:
        if not isinstance(st, dict) or len(st) != 1:
            continue
        key, v = next(iter(st.items()))
        if key == "match" and isinstance(v, dict):
            src = random_source(v.get("left"))
            if src:
                op = v.get("op", "==")
                op = op if isinstance(op, str) else "=="
                src.update(op=op, value=v.get("right"), probability=_fraction(src["lo"], src["hi"], op, v.get("right")))
                stat = src
                break
        if key == "vmap" and isinstance(v, dict):
            src = random_source(v.get("key"))
            data = v.get("data")
            data = data.get("set") if isinstance(data, dict) else data
            if src and isinstance(data, list):
                dropped = [p[0] for p in data if isinstance(p, list) and len(p) == 2 and isinstance(p[1], dict)
                           and set(p[1]) & set(NFT_DROP_VERDICTS)]
                share = _members(src["lo"], src["hi"], dropped)
                src.update(op="vmap", value=None,
                           probability=None if share is None else share / (src["hi"] - src["lo"] + 1))
                stat = src
                break
    if stat is None:
        found = _find_random(stmts, 0)
        if found is None:
            return None
        stat = dict(found, op=None, value=None, probability=None)
    every = stat["mod"] if stat["mode"] == "nth" else None
    packet = stat["value"] if every is not None and stat["op"] in ("==", "!=") and _is_int(stat["value"]) else None
    stat.update(every=every, packet=packet, negated=stat["op"] == "!=")
    del stat["lo"], stat["hi"]
    return stat


def _find_random(e: Any, depth: int) -> Optional[Dict[str, Any]]:
    if depth > _MAX_DEPTH:
        return None
    src = random_source(e)
    if src:
        return src
    children = e.values() if isinstance(e, dict) else e if isinstance(e, list) else ()
    for child in children:
        found = _find_random(child, depth + 1)
        if found:
            return found
    return None


def _get(body: Dict[str, Any], key: str, kind: Any, source: str, where: str, required: bool = True) -> Any:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ParseError(source, None, "%s: %r must be %s" % (where, key, getattr(kind, "__name__", "valid")))
    return value


def _nft_counter(v: Any, source: str, where: str) -> Dict[str, int]:
    if not isinstance(v, dict):
        raise ParseError(source, None, "%s: counter is not an object" % where)
    out = {"packets": _get(v, "packets", int, source, where), "bytes": _get(v, "bytes", int, source, where)}
    for key, value in out.items():
        if not INT_MIN <= value <= INT_MAX:
            raise ParseError(source, None, "%s: counter %s does not fit in 64 bits" % (where, key))
    return out


def _nft_rule(body: Dict[str, Any], source: str, where: str) -> Rule:
    """One "rule" object; its position in the chain is set by the caller."""
    stmts = _get(body, "expr", list, source, where)
    verdict: Optional[str] = None
    counters: Optional[Dict[str, int]] = None
    counter_ref: Optional[str] = None
    xt = xt_statistic = xt_unnamed = False
    for st in stmts:
        if not isinstance(st, dict) or len(st) != 1:
            raise ParseError(source, None, "%s: statement is not a one-key object" % where)
        key, v = next(iter(st.items()))
        if key in NFT_VERDICTS:
            verdict = key
        elif key in ("jump", "goto"):
            verdict = "%s %s" % (key, render(v.get("target") if isinstance(v, dict) else v))
        elif key == "vmap":
            verdict = "vmap"
        elif key == "counter":
            if isinstance(v, dict) and "packets" in v:
                counters = _nft_counter(v, source, where)
            elif v is not None:  # a named counter, or a map choosing one: "counter name <expr>"
                counter_ref = render(v)
        elif key == "xt":
            xt = True
            if isinstance(v, dict) and v.get("name") == "statistic" and v.get("type", "match") == "match":
                xt_statistic = True
            elif isinstance(v, dict) and v.get("type") == "target" and v.get("name") in DROP_ACTIONS:
                verdict = str(v["name"]).lower()  # iptables-nft's -j REJECT is an xt target
            elif not (isinstance(v, dict) and v.get("name")):
                xt_unnamed = True  # older nft prints {"xt": null}: which match or target it is cannot be told
    rule: Rule = {
        "family": _get(body, "family", str, source, where),
        "backend": "nft-native",
        "table": _get(body, "table", str, source, where),
        "chain": _get(body, "chain", str, source, where),
        "position": 0,
        "handle": _get(body, "handle", int, source, where, required=False),
        "spec": " ".join(x for x in (render(st) for st in stmts) if x),
        "comment": _get(body, "comment", str, source, where, required=False),
        "verdict": verdict,
        "counters": counters,
        "counter_ref": counter_ref,
        "statistic": _nft_statistic(stmts),
        "xt": xt,
    }
    if rule["statistic"] is None and xt_statistic:  # iptables' -m statistic, opaque in nft -j: random or nth mode
        rule["statistic"] = dict(XT_STATISTIC)
    rule["random_drop"] = is_random_drop(rule)
    # an unnamed xt expression in a rule that drops (or whose verdict is that expression): maybe a random drop
    rule["random_drop_unknown"] = xt_unnamed and not rule["random_drop"] and verdict in (None,) + NFT_DROP_VERDICTS
    return rule


def _prio(value: Any) -> Any:
    """A chain's priority as nft prints it (a number or a name), anything else as short text."""
    return value if value is None or isinstance(value, (int, str)) and not isinstance(value, bool) else render(value)


def parse_nft_json(data: Union[str, bytes, Dict[str, Any]], source: str = "nft -j list ruleset") -> Dict[str, Any]:
    """`nft -j list ruleset` output (text or the loaded object) -> ruleset dict.

    Returns {"backend": "nft-native", "metainfo": dict|None, "tables": [{family, name, handle}],
    "chains": [{family, table, name, handle, type, hook, prio, policy, base}], "rules": [rule],
    "named_counters": [{family, table, name, packets, bytes}]}. A rule is {family, backend, table,
    chain, position (1-based in its chain), handle, spec (short nft-like text), comment, verdict
    ("accept", "drop", "reject", "jump X", "goto X", "return", "continue", "queue", "vmap" or None),
    counters ({"packets", "bytes"} of an anonymous counter, else None), counter_ref (named counter
    or the expression choosing one, else None),
    statistic (see below), xt (True when the rule holds an iptables-nft compat "xt" expression,
    whose parameters only iptables-nft-save can show), random_drop, random_drop_unknown (True when an xt
    expression without a name - older nft prints {"xt": null} - sits in a rule that drops or whose verdict may be
    that expression: whether it drops at random cannot be told)}.

    An xt expression named "statistic" (iptables' -m statistic, as nft 1.0.6 names it) gives statistic
    {"source": "xt statistic", "mode": "random or nth", everything else None}: its parameters are not shown, but
    the match has only those two modes, so with a drop/reject verdict (or an xt REJECT target) it is a random drop.

    statistic is None or {"source": "numgen"|"meta random", "mode": "random"|"nth" (numgen inc),
    "mod", "offset", "op", "value", "probability" (share of packets the comparison matches, or for
    a vmap the share mapped to drop/reject; None when not computable), "every", "packet", "negated"}.
    Sets, maps, flowtables and unknown object types are skipped.
    """
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = json.loads(to_text(data, source))
        except RecursionError:
            raise ParseError(source, None, "JSON nested too deep")
        except ValueError as exc:
            raise ParseError(source, None, "not JSON: %s" % str(exc)[:80])
    try:
        return _parse_nft(data, source)
    except RecursionError:  # an expression nested hundreds deep (nft itself prints a few levels)
        raise ParseError(source, None, "JSON nested too deep")


def _parse_nft(data: Any, source: str) -> Dict[str, Any]:
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ParseError(source, None, 'expected an object with an "nftables" list')
    result: Dict[str, Any] = {"backend": "nft-native", "metainfo": None, "tables": [], "chains": [], "rules": [],
                              "named_counters": []}
    positions: Dict[Tuple[str, str, str], int] = {}
    for index, item in enumerate(items):
        where = "element %d" % index
        if not isinstance(item, dict) or len(item) != 1:
            raise ParseError(source, None, "%s is not a one-key object" % where)
        kind, body = next(iter(item.items()))
        if kind not in ("metainfo", "table", "chain", "rule", "counter"):
            continue
        if not isinstance(body, dict):
            raise ParseError(source, None, "%s: %s is not an object" % (where, kind))
        if kind == "metainfo":  # only its plain values (version, release_name, json_schema_version)
            result["metainfo"] = dict((k, v) for k, v in body.items() if isinstance(v, (str, int, float, bool)) or v is None)
        elif kind == "table":
            result["tables"].append({"family": _get(body, "family", str, source, where),
                                     "name": _get(body, "name", str, source, where),
                                     "handle": _get(body, "handle", int, source, where, required=False)})
        elif kind == "chain":
            chain = {"family": _get(body, "family", str, source, where),
                     "table": _get(body, "table", str, source, where),
                     "name": _get(body, "name", str, source, where),
                     "handle": _get(body, "handle", int, source, where, required=False),
                     "type": _get(body, "type", str, source, where, required=False),
                     "hook": _get(body, "hook", str, source, where, required=False),
                     "prio": _prio(body.get("prio")),
                     "policy": _get(body, "policy", str, source, where, required=False)}
            chain["base"] = chain["hook"] is not None
            result["chains"].append(chain)
        elif kind == "rule":
            rule = _nft_rule(body, source, where)
            key = (rule["family"], rule["table"], rule["chain"])
            rule["position"] = positions[key] = positions.get(key, 0) + 1
            result["rules"].append(rule)
        else:
            counter = {"family": _get(body, "family", str, source, where),
                       "table": _get(body, "table", str, source, where),
                       "name": _get(body, "name", str, source, where)}
            counter.update(_nft_counter(body, source, where))
            result["named_counters"].append(counter)
    return result
