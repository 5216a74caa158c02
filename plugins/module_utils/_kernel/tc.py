# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Qdiscs, one row shape whatever the source: `tc [-s] qdisc show` text, or an rtnetlink dump; and the RTM_*QDISC
requests that change them.

A row is {"interface", "ifindex" (None from text), "kind", "handle", "parent" ("root", "ingress" or "MAJ:MIN"),
"root", "refcnt" (None from netlink), "options", "stats", "line" (the qdisc as `tc qdisc show` prints it)}.
netem options come from the one option table (_kernel.netem), tbf and fifo options from their structs, other
kinds' options from text as words (netlink: their size). ``stats`` is None from text without -s, else STATS_KEYS.
Only ParseError is raised on bad input.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import re
import socket
import struct
from typing import Any, Dict, List, Optional, Union

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError, to_text
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.rtnetlink import (
    NETLINK_ROUTE, NLMSG_HDRLEN, TC_H_ROOT, Netlink, attributes, dump, format_handle, header, nla, parse_handle,
    request)


def _netem() -> Any:
    """netem's options (_kernel.netem), compiled only where a netem qdisc or tc text is read (module code reaches the
    target in a zip and is compiled on every run)."""
    from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import netem
    return netem


STATS_KEYS = ("bytes", "packets", "drops", "overlimits", "requeues", "backlog_bytes", "backlog_packets", "qlen")
ROW_KEYS = ("interface", "ifindex", "kind", "handle", "parent", "root", "refcnt", "options", "stats", "line")

_HANDLE = re.compile(r"^[0-9a-fA-F]{0,8}:[0-9a-fA-F]{0,8}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_SENT = re.compile(r"Sent ([0-9]{1,20}) bytes ([0-9]{1,20}) pkts? \(dropped ([0-9]{1,20}), "
                   r"overlimits ([0-9]{1,20})(?: requeues ([0-9]{1,20}))?\)")
_BACKLOG = re.compile(r"backlog (\S+) ([0-9]{1,20})p(?: requeues ([0-9]{1,20}))?")


def qdisc_line(row: Dict[str, Any], handle: Optional[str] = None) -> str:
    """One qdisc as ``tc qdisc show`` prints it (netem with its options)."""
    where = "root" if row.get("root") else "parent %s" % row.get("parent")
    line = "qdisc %s %s dev %s %s" % (row["kind"], handle or row["handle"], row["interface"], where)
    if row["kind"] == "netem" and isinstance(row.get("options"), dict) and "limit" in row["options"]:
        line += " " + " ".join(_netem().words(row["options"], show=True))
    return line


# --------------------------------------------------------------------------------------
# `tc [-s] qdisc show` text
# --------------------------------------------------------------------------------------

def _generic_options(words: List[str]) -> Dict[str, Any]:
    """Other qdiscs: "key value" pairs, bare words as True, several values as a list
    ("bands 3 priomap 1 2 2 ..." -> {"bands": 3, "priomap": [1, 2, 2, ...]})."""
    options: Dict[str, Any] = {}
    key = "args"
    for word in words:
        if not word[:1].isdigit():
            key = word
            options[key] = True
            continue
        value: Any = int(word) if _DIGITS.match(word) else word
        old = options.get(key, True)
        if old is True:
            options[key] = value
        elif isinstance(old, list):
            old.append(value)  # in place: a line of many values stays linear
        else:
            options[key] = [old, value]
    return options


def _stats_line(line: str, entry: Dict[str, Any]) -> None:
    sent, backlog = _SENT.search(line), _BACKLOG.search(line)
    if not sent and not backlog:
        return  # qdisc-specific extra statistics (fq_codel, ...) are not kept
    stats = entry["stats"] = entry["stats"] or dict.fromkeys(STATS_KEYS, 0)
    if sent:
        for key, group in zip(("bytes", "packets", "drops", "overlimits", "requeues"), sent.groups()):
            stats[key] = int(group or 0)
    if backlog:
        stats["backlog_bytes"] = _netem().size_bytes(backlog.group(1)) or 0
        stats["backlog_packets"] = stats["qlen"] = int(backlog.group(2))
        if backlog.group(3) is not None:
            stats["requeues"] = int(backlog.group(3))


def parse_tc_qdisc_show(text: Union[str, bytes], source: str = "tc qdisc show",
                        interface: Optional[str] = None) -> List[Dict[str, Any]]:
    """`tc [-s] qdisc show [dev X]` -> qdisc rows (see the module's docstring) in output order.

    ``interface`` is the device when the output comes from `tc qdisc show dev X` (which omits
    "dev X"). ``handle`` and ``parent`` are as format_handle writes them ("8001:", "1f87:2", "root", "ingress").
    ``options`` holds NETEM_KEYS for netem, else _generic_options. ``stats`` is None without -s, else STATS_KEYS
    from the " Sent ... (dropped N, overlimits N requeues N)" / " backlog Nb Np" lines
    (qlen is the backlog packet count, as tc prints it). ``line`` is the qdisc's line as printed.
    """
    entries: List[Dict[str, Any]] = []
    for lineno, line in enumerate(to_text(text, source).splitlines(), 1):
        if not line.strip():
            continue
        if line[0].isspace():
            if not entries:
                raise ParseError(source, lineno, "statistics line before any qdisc")
            _stats_line(line, entries[-1])
            continue
        w = _netem().Words(line.split(), source, lineno)
        if w.take() != "qdisc":
            raise ParseError(source, lineno, "expected 'qdisc KIND HANDLE ...', got %r" % line[:60])
        kind = w.take(what="qdisc kind")
        handle = w.take(lambda h: h if _HANDLE.match(h) else None, "qdisc handle")
        entry: Dict[str, Any] = {"interface": interface, "ifindex": None, "kind": kind,
                                 "handle": format_handle(parse_handle(handle)), "parent": None, "root": False,
                                 "refcnt": None, "options": None, "stats": None, "line": line.strip()}
        while w.peek() in ("dev", "root", "parent", "refcnt"):
            word = w.take()
            if word == "root":
                entry["root"], entry["parent"] = True, "root"
            elif word == "refcnt":
                entry["refcnt"] = w.integer("refcnt")
            elif word == "dev":
                entry["interface"] = w.take(what=word)
            else:
                entry["parent"] = format_handle(parse_handle(w.take(lambda h: h if _HANDLE.match(h) else None, "parent")))
        entry["options"] = _netem().parse_words(w) if kind == "netem" else _generic_options(w.words[w.i:])
        entries.append(entry)
    return entries


# --------------------------------------------------------------------------------------
# rtnetlink: RTM_GETQDISC dumps (struct tcmsg and its attributes), RTM_NEWQDISC / RTM_DELQDISC requests
# --------------------------------------------------------------------------------------

RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
TCMSG = "=B3xiIII"  # family, ifindex, handle, parent, info
TCA_KIND, TCA_OPTIONS, TCA_STATS, TCA_STATS2 = 1, 2, 3, 7
TCA_STATS_BASIC, TCA_STATS_QUEUE, TCA_STATS_PKT64 = 1, 3, 8
TCA_TBF_PARMS, TCA_TBF_RATE64, TCA_TBF_BURST = 1, 4, 6


def _stats(stats2: Optional[bytes], legacy: Optional[bytes]) -> Dict[str, int]:
    out = dict.fromkeys(STATS_KEYS, 0)
    if legacy is not None and len(legacy) >= 36:
        (out["bytes"], out["packets"], out["drops"], out["overlimits"], _bps, _pps,
         out["qlen"], out["backlog_bytes"]) = struct.unpack_from("=QIIIIIII", legacy)
    if stats2 is not None:
        for kind, start, end in attributes(stats2, 0, len(stats2)):
            payload = stats2[start:end]
            if kind == TCA_STATS_BASIC and len(payload) >= 12:
                out["bytes"], out["packets"] = struct.unpack_from("=QI", payload)
            elif kind == TCA_STATS_PKT64 and len(payload) >= 8:
                out["packets"] = struct.unpack_from("=Q", payload)[0]
            elif kind == TCA_STATS_QUEUE and len(payload) >= 20:
                out["qlen"], out["backlog_bytes"], out["drops"], out["requeues"], out["overlimits"] = \
                    struct.unpack_from("=IIIII", payload)
    out["backlog_packets"] = out["qlen"]  # the queue length is the backlog in packets, as tc prints it
    return out


def _ratespec_bps(payload: bytes, offset: int) -> int:
    # struct tc_ratespec { u8 cell_log, linklayer; u16 overhead; s16 cell_align; u16 mpu; u32 rate; }
    return struct.unpack_from("=I", payload, offset + 8)[0] * 8


def decode_options(kind: str, raw: Optional[bytes]) -> Dict[str, Any]:
    """Options of the qdisc kinds whose settings explain drops; others are reported by size only."""
    if raw is None:
        return {}
    if kind == "netem":
        return _netem().decode_netem_options(raw)
    if kind in ("pfifo", "bfifo", "pfifo_head_drop") and len(raw) >= 4:
        return {"limit": struct.unpack_from("=I", raw)[0]}
    if kind == "tbf":
        out: Dict[str, Any] = {}
        for akind, start, end in attributes(raw, 0, len(raw)):
            payload = raw[start:end]
            if akind == TCA_TBF_PARMS and len(payload) >= 36:  # tc_tbf_qopt
                out["rate_bps"] = _ratespec_bps(payload, 0)
                out["limit"], out["buffer"], out["mtu"] = struct.unpack_from("=III", payload, 24)
            elif akind == TCA_TBF_RATE64 and len(payload) >= 8:  # bytes/s
                out["rate_bps"] = struct.unpack_from("=Q", payload)[0] * 8
            elif akind == TCA_TBF_BURST and len(payload) >= 4:
                out["burst"] = struct.unpack_from("=I", payload)[0]
        return out
    return {"raw_length": len(raw)}


def decode_qdisc(buf: bytes, names: Dict[int, str]) -> Dict[str, Any]:
    """The row of one RTM_NEWQDISC message; ``names``: interface names by ifindex."""
    _family, ifindex, handle, parent, _info = header(buf, TCMSG, "qdisc")
    kind, options, stats2, legacy = "", None, None, None
    for akind, start, end in attributes(buf, NLMSG_HDRLEN + struct.calcsize(TCMSG), len(buf)):
        payload = buf[start:end]
        if akind == TCA_KIND:
            kind = payload.split(b"\0", 1)[0].decode("ascii", "replace")
        elif akind == TCA_OPTIONS:
            options = payload
        elif akind == TCA_STATS2:
            stats2 = payload
        elif akind == TCA_STATS:
            legacy = payload
    try:
        decoded = decode_options(kind, options)
    except ValueError as exc:
        decoded = {"decode_error": str(exc)}
    row = {"interface": names.get(ifindex, str(ifindex)), "ifindex": ifindex, "kind": kind,
           "handle": format_handle(handle), "parent": format_handle(parent), "root": parent == TC_H_ROOT,
           "refcnt": None, "options": decoded, "stats": _stats(stats2, legacy)}
    row["line"] = qdisc_line(row)
    return row


def read_qdiscs(nl: Netlink, interfaces: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """The qdiscs of the current namespace (of ``interfaces`` if given: an unknown one is a LookupError)."""
    names = nl.names()
    if interfaces:
        unknown = sorted(set(interfaces) - set(names.values()))
        if unknown:
            raise LookupError("unknown interface(s): %s (present: %s)" % (", ".join(unknown), ", ".join(sorted(names.values()))))
    # tcmsg: family AF_UNSPEC, ifindex 0 (every interface), handle, parent, info
    rows = [decode_qdisc(m, names) for m in dump(NETLINK_ROUTE, RTM_GETQDISC, struct.pack(TCMSG, 0, 0, 0, 0, 0))]
    if interfaces:
        rows = [r for r in rows if r["interface"] in interfaces]
    return rows


def qdisc_request(msg_type: int, flags: int, ifindex: int, handle: int, parent: int, kind: Optional[str] = None,
                  options: Optional[bytes] = None) -> None:
    """One RTM_NEWQDISC / RTM_DELQDISC request in the current namespace, answered by the kernel's ack.

    Raises rtnetlink.NetlinkError (errno and the kernel's message) when the kernel refuses it.
    """
    body = struct.pack(TCMSG, socket.AF_UNSPEC, ifindex, handle, parent, 0)
    if kind is not None:
        body += nla(TCA_KIND, kind.encode("ascii") + b"\0")
    if options is not None:
        body += nla(TCA_OPTIONS, options)
    request(NETLINK_ROUTE, msg_type, flags, body)


__all__ = ["STATS_KEYS", "ROW_KEYS", "parse_tc_qdisc_show", "qdisc_line", "decode_options", "decode_qdisc", "read_qdiscs",
           "qdisc_request", "RTM_NEWQDISC", "RTM_DELQDISC"]
