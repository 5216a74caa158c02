# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""netem qdiscs: remove them (all, one interface's, or those whose settings match bounds) or set one.

Reading goes through _kernel.tc.read_qdiscs (an rtnetlink dump, netem options decoded by the one option table of
_kernel.netem); changes are single rtnetlink requests (_kernel.tc.qdisc_request) carrying the TCA_OPTIONS payload
that _kernel.netem.encode_netem_options lays out as iproute2's tc does. This module holds the decisions: the
module's parameters, which qdiscs go, what takes their place, the backups, the check afterwards.
(pyroute2's netem encoder knows only part of these attributes, and the collection does not use pyroute2.)

- remove: RTM_DELQDISC with the qdisc's parent and handle (a root netem gives way to the
  interface's default qdisc, as ``tc qdisc del dev X root`` does).
- set: RTM_NEWQDISC with NLM_F_CREATE|NLM_F_REPLACE|NLM_F_EXCL and a handle no qdisc of the interface uses,
  on the root, which makes the kernel build a new netem with exactly these options and graft it in one step
  (``tc qdisc change`` would keep attributes the request leaves out).

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import errno
import json
import os
import re
import socket
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.features import kernel_has
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netem import (
    NETEM_KEYS, UINT32_MAX, decode_netem_options, encode_netem_options, percent, rate_bps, time_ms, words)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.rtnetlink import (
    NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, TC_H_ROOT, Netlink, NetlinkError, parse_handle)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.tc import (
    RTM_DELQDISC, RTM_NEWQDISC, qdisc_line, qdisc_request, read_qdiscs)
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation.common import (
    BackupPart, Plan, RemediationError, Step, check_name, diff_entry)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import Target

UINT64_MAX = (1 << 64) - 1

# numbers the module takes: percentages 0..100; times in ms or with a unit; rates in bit/s or with a unit
PERCENT_KEYS = ("loss", "loss_correlation", "delay_correlation", "duplicate", "duplicate_correlation", "corrupt",
                "corrupt_correlation", "reorder", "reorder_correlation")
MATCH_KEYS = {"loss": "loss", "delay": "delay_ms", "jitter": "jitter_ms", "duplicate": "duplicate",
              "corrupt": "corrupt", "reorder": "reorder", "rate": "rate_bps", "limit": "limit"}
COMPARE_SKIP = ("seed", "unparsed")  # the kernel draws a seed when none is given; unknown attributes are not ours
MAX_DELAY_MS = 3600 * 1000.0


def tc_restore_command(row: Dict[str, Any]) -> str:
    """The tc command that sets this netem qdisc again where it was."""
    if row.get("root"):
        where = "root"
    else:
        where = "parent %s" % row["parent"]
    options = " ".join(words(row["options"]))
    return "tc qdisc replace dev %s %s handle %s netem %s" % (row["interface"], where, row["handle"], options)


# --------------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------------

def parse_time_ms(value: Any, what: str) -> float:
    """A time: a number (milliseconds) or text with a unit (``100ms``, ``1.5s``, ``200us``) -> milliseconds."""
    if isinstance(value, bool):
        raise RemediationError("%s must be a time, got %r" % (what, value))
    ms = float(value) if isinstance(value, (int, float)) else time_ms(str(value), bare="ms")
    if ms is None:
        raise RemediationError("%s must be a number of milliseconds or a time such as 100ms, 1.5s, 200us; got %r"
                               % (what, value))
    if not 0 <= ms <= MAX_DELAY_MS:
        raise RemediationError("%s must be between 0 and %d ms, got %r" % (what, MAX_DELAY_MS, value))
    return ms


def parse_rate_bps(value: Any, what: str = "rate") -> int:
    """A rate: a number (bit/s) or text as tc takes it (``1mbit``, ``100Kbit``, ``10gbit``, ``125kbps`` for bytes/s)."""
    if isinstance(value, bool):
        raise RemediationError("%s must be a rate, got %r" % (what, value))
    bps = float(value) if isinstance(value, (int, float)) else rate_bps(str(value), bare=True)
    if bps is None:
        raise RemediationError("%s must be bits per second or a rate such as 1mbit, 100kbit, 10gbit; got %r"
                               % (what, value))
    if not 8 <= bps <= UINT64_MAX:
        raise RemediationError("%s must be at least 8bit (one byte per second), got %r" % (what, value))
    return int(bps)


def _percent(value: Any, what: str) -> Optional[float]:
    if value is None:
        return None
    number = percent(value, sign=False) if isinstance(value, str) else None if isinstance(value, bool) else float(value)
    if number is None or not 0 <= number <= 100:
        raise RemediationError("%s must be a percentage 0..100, got %r" % (what, value))
    return number or None


def desired_options(p: Dict[str, Any]) -> Dict[str, Any]:
    """The module's netem parameters -> NETEM_KEYS, checked as tc checks them."""
    o = dict(NETEM_KEYS)
    for key in PERCENT_KEYS:
        o[key] = _percent(p.get(key), key)
    o["delay_ms"] = parse_time_ms(p["delay"], "delay") if p.get("delay") is not None else None
    o["jitter_ms"] = parse_time_ms(p["jitter"], "jitter") if p.get("jitter") is not None else None
    o["delay_ms"] = o["delay_ms"] or None
    o["jitter_ms"] = o["jitter_ms"] or None
    o["rate_bps"] = parse_rate_bps(p["rate"]) if p.get("rate") is not None else None
    limit = p.get("limit")
    o["limit"] = 1000 if limit is None else int(limit)
    if not 1 <= o["limit"] <= UINT32_MAX:
        raise RemediationError("limit must be 1..%d packets, got %r" % (UINT32_MAX, limit))
    gap = p.get("gap")
    o["ecn"] = bool(p.get("ecn"))
    o["loss_model"] = "random" if o["loss"] else None
    needs = [("jitter", "delay"), ("delay_correlation", "jitter"), ("loss_correlation", "loss"),
             ("duplicate_correlation", "duplicate"), ("corrupt_correlation", "corrupt"),
             ("reorder_correlation", "reorder"), ("reorder", "delay"), ("ecn", "loss")]
    value_of = {"jitter": o["jitter_ms"], "delay": o["delay_ms"], "ecn": o["ecn"]}
    for key, base in needs:
        if value_of.get(key, o.get(key)) and not value_of.get(base, o.get(base)):
            raise RemediationError("%s needs %s" % (key, base))
    if gap is not None:
        if not o["reorder"]:
            raise RemediationError("gap needs reorder")
        if not 1 <= int(gap) <= UINT32_MAX:
            raise RemediationError("gap must be 1..%d, got %r" % (UINT32_MAX, gap))
        o["gap"] = int(gap)
    elif o["reorder"]:
        o["gap"] = 1  # what tc sets: reorder without gap reorders any packet with that probability
    return o


def match_bounds(match: Optional[Dict[str, Any]]) -> Dict[str, Tuple[Optional[float], Optional[float]]]:
    """``match`` ({key: value or {min, max}}) -> {decoded key: (min, max)} in the decoded units."""
    if not match:
        return {}
    if not isinstance(match, dict):
        raise RemediationError("match must be a dictionary")
    out: Dict[str, Tuple[Optional[float], Optional[float]]] = {}
    for key, spec in match.items():
        if key not in MATCH_KEYS:
            raise RemediationError("match: unknown key %r (known: %s)" % (key, ", ".join(sorted(MATCH_KEYS))))

        def convert(value: Any) -> Optional[float]:
            if value is None:
                return None
            if key in ("delay", "jitter"):
                return parse_time_ms(value, "match." + key)
            if key == "rate":
                return float(parse_rate_bps(value, "match.rate"))
            if key == "limit":
                try:
                    return float(int(value))
                except (TypeError, ValueError):
                    raise RemediationError("match.limit must be an integer, got %r" % (value,))
            number = _percent(value, "match." + key)
            return number or 0.0
        if isinstance(spec, dict):
            unknown = set(spec) - {"min", "max"}
            if unknown or not spec:
                raise RemediationError("match.%s takes min and/or max, got %s" % (key, ", ".join(sorted(map(str, spec)))))
            low, high = convert(spec.get("min")), convert(spec.get("max"))
            if low is not None and high is not None and low > high:
                raise RemediationError("match.%s: min %s is above max %s" % (key, spec.get("min"), spec.get("max")))
        else:
            low = high = convert(spec)
        out[MATCH_KEYS[key]] = (low, high)
    return out


def matches(options: Dict[str, Any], bounds: Dict[str, Tuple[Optional[float], Optional[float]]]) -> bool:
    """Whether decoded netem ``options`` fall within every bound (an option that is off counts as 0)."""
    for key, (low, high) in bounds.items():
        value = float(options.get(key) or 0)
        tolerance = 1e-6 * max(1.0, abs(value))
        if low is not None and value < low - tolerance or high is not None and value > high + tolerance:
            return False
    return True


def same_options(current: Dict[str, Any], wanted: Dict[str, Any]) -> List[str]:
    """The option keys where ``current`` (as the kernel reports it) differs from ``wanted`` (decoded form)."""
    def close(a: Any, b: Any) -> bool:
        if isinstance(a, dict) and isinstance(b, dict):
            return set(a) == set(b) and all(close(a[k], b[k]) for k in a)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
        return a == b
    return [k for k in NETEM_KEYS if k not in COMPARE_SKIP and not close(current.get(k), wanted.get(k))]


def validate(params: Dict[str, Any]) -> Dict[str, Any]:
    state = params.get("state")
    if state not in ("absent", "present"):
        raise RemediationError("state must be absent or present")
    v: Dict[str, Any] = {"state": state, "interface": check_name("interface", params.get("interface"))}
    option_keys = ["loss", "delay", "jitter", "duplicate", "corrupt", "reorder", "gap", "rate", "limit", "ecn"] + \
        [k for k in PERCENT_KEYS if k.endswith("_correlation")]
    if state == "absent":
        given = [k for k in option_keys if params.get(k) not in (None, False)] + \
            (["force"] if params.get("force") else [])
        if given:
            raise RemediationError("%s only with state=present (use match to choose which netem qdiscs to remove)"
                                   % ", ".join(given))
        parent = params.get("parent") or "any"
        if parent not in ("any", "root", "child"):
            raise RemediationError("parent must be any, root or child")
        v.update(bounds=match_bounds(params.get("match")), parent=parent)
        return v
    if params.get("match"):
        raise RemediationError("match only with state=absent")
    if params.get("parent") not in (None, "root"):
        raise RemediationError("state=present sets the root qdisc: parent must be root or left out")
    if v["interface"] is None:
        raise RemediationError("state=present needs interface")
    v.update(options=desired_options(params), force=bool(params.get("force")))
    return v


# --------------------------------------------------------------------------------------------------
# the kernel: netem support, rtnetlink requests
# --------------------------------------------------------------------------------------------------

NO_NETEM = "the kernel has no sch_netem (netem qdisc support)"


class TcError(RemediationError):
    """An rtnetlink request the kernel refused: errno and the kernel's own message (extended ack)."""

    def __init__(self, code: int, kernel_msg: str, what: str) -> None:
        self.code = code
        self.kernel_msg = kernel_msg
        detail = kernel_msg or os.strerror(code)
        super(TcError, self).__init__("%s: %s (errno %d %s)" % (what, detail, code, errno.errorcode.get(code, "")))


def tc_request(msg_type: int, flags: int, ifindex: int, handle: int, parent: int, kind: Optional[str] = None,
               options: Optional[bytes] = None, what: str = "tc request") -> None:
    """Send one RTM_*QDISC request in the current namespace and wait for the kernel's answer."""
    try:
        qdisc_request(msg_type, flags, ifindex, handle, parent, kind, options)
    except NetlinkError as exc:
        raise TcError(exc.errno, exc.kernel_msg, what)
    except socket.timeout:
        raise RemediationError("%s: no answer from the kernel within 10 s" % what)
    except OSError as exc:
        raise RemediationError("%s: %s" % (what, exc.strerror or exc))


def netem_support() -> Optional[bool]:
    """Whether this kernel has netem: True, False, or None when it cannot be told without trying."""
    return kernel_has("NET_SCH_NETEM", "sch_netem")


# --------------------------------------------------------------------------------------------------
# plans
# --------------------------------------------------------------------------------------------------

def _read_qdiscs(interfaces: Optional[List[str]]) -> List[Dict[str, Any]]:
    try:
        with Netlink() as nl:
            return read_qdiscs(nl, interfaces)
    except LookupError as exc:
        raise RemediationError(str(exc).strip("'\""))
    except OSError as exc:
        raise RemediationError("cannot read the qdiscs over netlink: %s" % exc)


def _show(rows: List[Dict[str, Any]], interfaces: List[str]) -> str:
    return "".join(qdisc_line(r) + "\n" for r in rows if r["interface"] in interfaces)


def _descendants(rows: List[Dict[str, Any]], row: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Qdiscs below ``row`` on its interface (its classes' qdiscs, recursively)."""
    out: List[Dict[str, Any]] = []
    majors = {parse_handle(row["handle"]) >> 16}
    grew = True
    while grew:
        grew = False
        for r in rows:
            if r["ifindex"] == row["ifindex"] and r is not row and r not in out and not r["root"] \
                    and parse_handle(r["parent"]) >> 16 in majors:
                out.append(r)
                majors.add(parse_handle(r["handle"]) >> 16)
                grew = True
    return out


def _entry(row: Dict[str, Any], reason: Optional[str] = None) -> Dict[str, Any]:
    out = {"interface": row["interface"], "kind": row["kind"], "handle": row["handle"], "parent": row["parent"],
           "root": row["root"], "options": row.get("options"), "stats": row.get("stats"), "line": qdisc_line(row)}
    if reason:
        out["reason"] = reason
    return out


def _backup(rows: List[Dict[str, Any]], restore: List[str], target: Target) -> BackupPart:
    content = ["#!/bin/sh", "# netem qdiscs of %s before netdiag.packetloss.netem changed them." % target.label,
               "# Run this file (sh FILE) in the namespace to put the netem qdiscs back.",
               "# The qdiscs as they were (JSON): %s" % json.dumps(rows, sort_keys=True), "set -e"] + restore
    return BackupPart("tc.sh", "\n".join(content) + "\n", "sh {path}", {"format": "tc commands"})


def plan_absent(target: Target, v: Dict[str, Any]) -> Plan:
    plan = Plan(target)
    rows = _read_qdiscs([v["interface"]] if v["interface"] else None)
    chosen = [r for r in rows if r["kind"] == "netem" and (v["parent"] == "any" or (v["parent"] == "root") == r["root"])
              and isinstance(r.get("options"), dict) and "decode_error" not in r["options"]
              and matches(r["options"], v["bounds"])]
    undecodable = [r for r in rows if r["kind"] == "netem" and "decode_error" in (r.get("options") or {})]
    for r in undecodable:
        plan.warnings.append("netem %s on %s: options not readable (%s); left alone"
                             % (r["handle"], r["interface"], r["options"]["decode_error"]))
    # a netem below another chosen netem goes with it
    top = [r for r in chosen if not any(r in _descendants(rows, other) for other in chosen if other is not r)]
    gone: List[Dict[str, Any]] = []
    child_kind = default_qdisc() if any(not r["root"] for r in top) else ""
    replacements: List[Dict[str, Any]] = []
    for row in top:
        plan.removed.append(_entry(row))
        for child in _descendants(rows, row):
            reason = "below the removed netem %s on %s" % (row["handle"], row["interface"])
            plan.removed.append(_entry(child, reason))
            if child["kind"] != "netem":
                plan.warnings.append("%s %s on %s goes with the netem above it" % (child["kind"], child["handle"],
                                                                                   child["interface"]))
            gone.append(child)
        gone.append(row)
        plan.steps.append(_remove_step(row, child_kind))
        if not row["root"]:
            replacements.append(dict(row, kind=child_kind, handle="(new)", options={}))
    plan.extra["scanned"] = [{"interface": r["interface"], "kind": r["kind"], "handle": r["handle"], "parent": r["parent"]}
                             for r in rows]
    if not top:
        return plan
    interfaces = sorted(set(r["interface"] for r in top))
    before = _show(rows, interfaces)
    plan.diffs.append(diff_entry("tc qdisc show (%s)" % ", ".join(interfaces), before,
                                 _show([r for r in rows if r not in gone] + replacements, interfaces)))
    plan.added.extend(_entry(r, "in place of the removed child netem") for r in replacements)
    restore = [tc_restore_command(r) for r in top] + [tc_restore_command(r) for r in chosen if r not in top]
    restore += ["# also gone with a netem above it, not set again by this file: %s" % qdisc_line(r)
                for r in gone if r["kind"] != "netem"]
    plan.backup.append(_backup(rows, restore, target))

    def verify() -> List[str]:
        now = _read_qdiscs(interfaces)
        keys = set((r["ifindex"], r["handle"]) for r in top)
        left = [r for r in now if (r["ifindex"], r["handle"]) in keys and r["kind"] == "netem"]
        plan.diffs[:] = [diff_entry("tc qdisc show (%s)" % ", ".join(interfaces), before, _show(now, interfaces))]
        return ["netem %s is still on %s" % (r["handle"], r["interface"]) for r in left]

    plan.verify = verify
    return plan


def default_qdisc() -> str:
    """The kernel's default qdisc (net.core.default_qdisc), what a class gets in place of a removed child netem."""
    try:
        with open("/proc/sys/net/core/default_qdisc") as handle:
            kind = handle.read().strip()
    except OSError:
        kind = ""
    return kind if re.match(r"^[a-z_]{1,16}$", kind) else "pfifo_fast"


def _remove_step(row: Dict[str, Any], child_kind: str) -> Step:
    """A root netem is deleted (the interface gets its default qdisc back, as with ``tc qdisc del``). A child netem
    is replaced by ``child_kind`` in one request: deleting it would leave the class of a prio, mq, tbf, ... parent
    with the kernel's noop qdisc, which drops every packet."""
    if row["root"]:
        what = "tc qdisc del dev %s root handle %s (netem)" % (row["interface"], row["handle"])

        def delete() -> None:
            tc_request(RTM_DELQDISC, 0, row["ifindex"], parse_handle(row["handle"]), TC_H_ROOT, what=what)
        return Step(what, delete)
    what = "tc qdisc replace dev %s parent %s %s (in place of netem %s)" % (
        row["interface"], row["parent"], child_kind, row["handle"])

    def replace() -> None:
        tc_request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_EXCL, row["ifindex"], 0,
                   parse_handle(row["parent"]), child_kind, None, what=what)
    return Step(what, replace)


def plan_present(target: Target, v: Dict[str, Any], check_mode: bool = False) -> Plan:
    plan = Plan(target)
    iface = v["interface"]
    rows = _read_qdiscs([iface])
    wanted = decode_netem_options(encode_netem_options(v["options"]))
    root = next((r for r in rows if r["root"]), None)
    plan.extra["scanned"] = [{"interface": r["interface"], "kind": r["kind"], "handle": r["handle"], "parent": r["parent"]}
                             for r in rows]
    if root is not None and root["kind"] == "netem" and isinstance(root.get("options"), dict) \
            and "decode_error" not in root["options"] and not same_options(root["options"], wanted):
        return plan
    if root is not None and root["kind"] != "netem" and parse_handle(root["handle"]) >> 16 and not v["force"]:
        raise RemediationError("the root qdisc of %s is %s %s, set up by someone: set force=true to replace it "
                               "(and everything below it) with netem" % (iface, root["kind"], root["handle"]))
    if check_mode and netem_support() is False:
        raise RemediationError("%s: %s cannot get a netem qdisc here; nothing was changed" % (NO_NETEM, iface))
    ifindex = rows[0]["ifindex"] if rows else _ifindex(iface)
    new_row = {"interface": iface, "ifindex": ifindex, "kind": "netem", "handle": "(new)", "parent": "root",
               "root": True, "options": wanted}
    plan.added.append(_entry(new_row))
    restore: List[str] = []
    if root is not None:
        below = _descendants(rows, root)
        plan.removed.append(_entry(root, "replaced by the new netem"))
        plan.removed.extend(_entry(r, "below the replaced root qdisc") for r in below)
        if root["kind"] == "netem":
            restore.append(tc_restore_command(root))
        elif parse_handle(root["handle"]) >> 16 == 0:
            restore.append("tc qdisc del dev %s root  # back to the default qdisc (%s)" % (iface, root["kind"]))
        else:
            restore.append("# the root qdisc was %s %s; this module cannot write its options back" % (root["kind"], root["handle"]))
    else:
        restore.append("tc qdisc del dev %s root" % iface)
    what = "tc qdisc replace dev %s root netem %s (a new netem, grafted in one request)" % (
        iface, " ".join(words(wanted)))
    payload = encode_netem_options(v["options"])

    # A handle no qdisc of the interface uses: with it, the kernel (6.1 as well as newer ones) creates the new netem
    # and grafts it in place of the old root in one step; with handle 0 a kernel 6.1 refuses to replace an existing
    # netem ("Exclusivity flag on, cannot modify").
    used = set(parse_handle(r["handle"]) >> 16 for r in rows)
    fresh = next(m for m in range(0x1000, 0xFFF0) if m not in used) << 16

    replace_netem = root is not None and root["kind"] == "netem"

    def apply() -> None:
        if replace_netem:
            # The kernel checks a new duplicating netem against every netem still in the tree ("cannot mix
            # duplicating netems"), the one it replaces included: take the old netem away first. In between, the
            # interface has its default qdisc, which passes every packet.
            tc_request(RTM_DELQDISC, 0, ifindex, parse_handle(root["handle"]), TC_H_ROOT, what="remove the old netem on %s" % iface)
        try:
            tc_request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_EXCL, ifindex, fresh, TC_H_ROOT, "netem", payload,
                       what="netem on %s" % iface)
        except TcError as exc:
            if exc.code == errno.ENOENT and (not exc.kernel_msg or "kind is unknown" in exc.kernel_msg) \
                    and netem_support() is not True:
                raise RemediationError("%s (the kernel said: %s): %s cannot get a netem qdisc here; nothing was changed"
                                       % (NO_NETEM, exc.kernel_msg or os.strerror(exc.code), iface))
            raise
    plan.steps.append(Step(what, apply))
    before = _show(rows, [iface])
    after_rows = [r for r in rows if r is not root and r not in (_descendants(rows, root) if root else [])]
    plan.diffs.append(diff_entry("tc qdisc show dev %s" % iface, before,
                                 qdisc_line(new_row) + "\n" + _show(after_rows, [iface])))
    plan.backup.append(_backup(rows, restore, target))

    def verify() -> List[str]:
        now = _read_qdiscs([iface])
        plan.diffs[:] = [diff_entry("tc qdisc show dev %s" % iface, before, _show(now, [iface]))]
        new_root = next((r for r in now if r["root"]), None)
        if new_root is None or new_root["kind"] != "netem":
            return ["the root qdisc of %s is not netem after the change" % iface]
        plan.added[0] = _entry(new_root)
        differ = same_options(new_root["options"], wanted)
        if differ:
            return ["the kernel keeps other netem options on %s than were set: %s" % (
                iface, ", ".join("%s=%r (wanted %r)" % (k, new_root["options"].get(k), wanted.get(k)) for k in differ))]
        return []

    plan.verify = verify
    return plan


def _ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise RemediationError("unknown interface %s" % name)


def summary(plan: Plan, check_mode: bool = False) -> str:
    if not plan.steps:
        if plan.extra.get("state") == "present":
            return "nothing to change: the netem qdisc is in place with these options"
        return "nothing to change: no netem qdisc in scope"
    would = "would be " if check_mode else ""
    parts = []
    if plan.removed:
        parts.append("%d qdisc(s) %sremoved: %s" % (len(plan.removed), would, "; ".join(r["line"] for r in plan.removed)))
    if plan.added and plan.extra.get("state") == "present":
        parts.append("netem %sset: %s" % (would, plan.added[0]["line"]))
    elif plan.added:
        parts.append("%d qdisc(s) %sput in place of child netem qdiscs: %s" % (
            len(plan.added), would, "; ".join(r["line"] for r in plan.added)))
    return "; ".join(parts)


def build(params: Dict[str, Any], check_mode: bool = False):
    """Validate ``params``; return the plan builder that execute() calls inside the target's namespace."""
    v = validate(params)

    def builder(target: Target) -> Plan:
        plan = plan_absent(target, v) if v["state"] == "absent" else plan_present(target, v, check_mode)
        plan.extra["state"] = v["state"]
        return plan
    return builder


__all__ = ["tc_restore_command", "parse_time_ms", "parse_rate_bps",
           "desired_options", "match_bounds", "matches", "same_options", "validate", "tc_request", "TcError",
           "netem_support", "parse_handle", "plan_absent", "plan_present", "summary", "build", "NO_NETEM"]
