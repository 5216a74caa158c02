# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for qdiscs: `tc [-s] qdisc show` text and the raw netem TCA_OPTIONS payload.

This module_utils is PRIVATE and should only be used by this collection.

Both give netem options with the same keys (NETEM_KEYS). Values follow iproute2's printing
rules: what `tc` leaves out (a zero loss, a jitter of 0, ...) is None, so decoding a kernel
payload and parsing the line `tc` prints for it give the same dict.
Only ParseError is raised on bad input.
"""
from __future__ import annotations

import re
import struct
from typing import Any, Dict, List, Optional, Tuple, Union

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError, to_int, to_text

# netem option keys. Times are in milliseconds, probabilities in percent (0-100).
NETEM_KEYS: Dict[str, Any] = {
    "limit": None,
    "delay_ms": None, "jitter_ms": None, "delay_correlation": None,
    "loss": None, "loss_correlation": None,
    "loss_model": None,      # "random" (loss N%), "state" (4-state model) or "gemodel" (Gilbert-Elliott)
    "loss_state": None,      # {"p13", "p31", "p32", "p23", "p14"} percent
    "loss_gemodel": None,    # {"p", "r", "1-h", "1-k"} percent, as tc prints them
    "ecn": False,
    "duplicate": None, "duplicate_correlation": None,
    "reorder": None, "reorder_correlation": None, "gap": None,
    "corrupt": None, "corrupt_correlation": None,
    "rate_bps": None, "packet_overhead": None, "cell_size": None, "cell_overhead": None,
    "slot": None,            # {"min_delay_ms", "max_delay_ms", "dist_delay_ms", "dist_jitter_ms", "max_packets", "max_bytes"}
    "seed": None,
    "unparsed": None,        # words (text) or attribute numbers (raw) this parser does not know, else None
}
SLOT_KEYS = ("min_delay_ms", "max_delay_ms", "dist_delay_ms", "dist_jitter_ms", "max_packets", "max_bytes")
STATS_KEYS = ("bytes", "packets", "drops", "overlimits", "requeues", "backlog_bytes", "backlog_packets", "qlen")

# Numbers are bounded to 20 digits so that int()/float() never overflow or hit str->int limits.
_NUM = r"([0-9]{1,20}(?:\.[0-9]{1,20})?)"
_TIME = re.compile(r"^%s(s|sec|secs|ms|msec|msecs|us|usec|usecs|ns|nsec|nsecs)?$" % _NUM)
_TIME_SCALE = dict([("", (1, 1000))] + [(prefix + suffix, scale) for prefix, scale in (
    ("s", (1000, 1)), ("ms", (1, 1)), ("us", (1, 1000)), ("ns", (1, 1000000))) for suffix in ("", "ec", "ecs")])
_PERCENT = re.compile(r"^%s%%$" % _NUM)
_RATE = re.compile(r"^%s(?:([KMGT])(i?))?(bit|bps)$" % _NUM)
_SIZE = re.compile(r"^%s([KMG]?)b$" % _NUM)
_HANDLE = re.compile(r"^[0-9a-fA-F]{0,8}:[0-9a-fA-F]{0,8}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_SENT = re.compile(r"Sent ([0-9]{1,20}) bytes ([0-9]{1,20}) pkts? \(dropped ([0-9]{1,20}), "
                   r"overlimits ([0-9]{1,20})(?: requeues ([0-9]{1,20}))?\)")
_BACKLOG = re.compile(r"backlog (\S+) ([0-9]{1,20})p(?: requeues ([0-9]{1,20}))?")
_POWERS = {"K": 1, "M": 2, "G": 3, "T": 4}


def _time_ms(token: str) -> Optional[float]:
    """tc time ("100ms", "1.0ms", "2.5s", "100us", "10ns"; bare numbers are usec) -> ms."""
    m = _TIME.match(token)
    if not m:
        return None
    multiply, divide = _TIME_SCALE[m.group(2) or ""]
    return float(m.group(1)) * multiply / divide


def _percent(token: str) -> Optional[float]:
    m = _PERCENT.match(token)
    return float(m.group(1)) if m else None


def _rate_bps(token: str) -> Optional[int]:
    """tc rate ("20Kbit", "1Mbit", "100Kibit"; "...bps" is bytes/s) -> bits per second."""
    m = _RATE.match(token)
    if not m:
        return None
    power = _POWERS.get(m.group(2) or "", 0)
    value = float(m.group(1)) * (1024 if m.group(3) else 1000) ** power
    return int(round(value * (8 if m.group(4) == "bps" else 1)))


def _size_bytes(token: str) -> Optional[int]:
    m = _SIZE.match(token)
    if not m:
        return None
    return int(round(float(m.group(1)) * 1024 ** " KMG".index(m.group(2) or " ")))


class _Words:
    """A cursor over one line's words that raises ParseError on a missing or bad value."""

    def __init__(self, words: List[str], source: str, line: int) -> None:
        self.words, self.source, self.line, self.i = words, source, line, 0

    def more(self) -> bool:
        return self.i < len(self.words)

    def peek(self) -> str:
        return self.words[self.i] if self.more() else ""

    def take(self, convert: Any = None, what: str = "value") -> Any:
        if not self.more():
            raise ParseError(self.source, self.line, "missing %s at the end" % what)
        word = self.words[self.i]
        value = convert(word) if convert else word
        if value is None:
            raise ParseError(self.source, self.line, "%r is not a valid %s" % (word[:40], what))
        self.i += 1
        return value

    def take_if(self, convert: Any) -> Any:
        """The next word converted if it converts, else None (the word is left)."""
        value = convert(self.peek()) if self.more() else None
        if value is not None:
            self.i += 1
        return value

    def integer(self, what: str) -> int:
        return self.take(lambda w: to_int(w, self.source, self.line), what)


def _netem_text_options(w: _Words) -> Dict[str, Any]:
    o = dict(NETEM_KEYS)
    unparsed: List[str] = []
    while w.more():
        word = w.take()
        if word == "limit":
            o["limit"] = w.integer("limit")
        elif word == "delay":
            o["delay_ms"] = w.take(_time_ms, "delay time")
            o["jitter_ms"] = w.take_if(_time_ms)
            o["delay_correlation"] = w.take_if(_percent)
        elif word == "loss" and w.peek() in ("state", "gemodel"):
            model = w.take()
            names = ("p13", "p31", "p32", "p23", "p14") if model == "state" else ("p", "r", "1-h", "1-k")
            values = {}
            while w.peek() in names:
                name = w.take()
                values[name] = w.take(_percent, "%s percentage" % name)
            o["loss_model"], o["loss_%s" % model] = model, dict((n, values.get(n)) for n in names)
        elif word == "loss":
            if w.peek() == "random":
                w.take()
            o["loss"], o["loss_model"] = w.take(_percent, "loss percentage"), "random"
            o["loss_correlation"] = w.take_if(_percent)
        elif word in ("duplicate", "reorder", "corrupt"):
            o[word] = w.take(_percent, "%s percentage" % word)
            o[word + "_correlation"] = w.take_if(_percent)
        elif word == "ecn":
            o["ecn"] = True
        elif word in ("gap", "seed"):
            o[word] = w.integer(word)
        elif word == "rate":
            o["rate_bps"] = w.take(_rate_bps, "rate")
        elif word in ("packetoverhead", "cellsize", "celloverhead"):
            o[{"packetoverhead": "packet_overhead", "cellsize": "cell_size"}.get(word, "cell_overhead")] = w.integer(word)
        elif word == "slot":
            slot = dict.fromkeys(SLOT_KEYS)
            if w.peek() == "distribution":
                w.take()
                slot["dist_delay_ms"] = w.take(_time_ms, "slot delay")
                slot["dist_jitter_ms"] = w.take(_time_ms, "slot jitter")
            else:
                slot["min_delay_ms"] = w.take(_time_ms, "slot min delay")
                slot["max_delay_ms"] = w.take_if(_time_ms)
            o["slot"] = slot
        elif word in ("packets", "bytes") and o["slot"] is not None:
            o["slot"]["max_" + word] = w.integer("slot " + word)
        else:
            unparsed.append(word)
    o["unparsed"] = unparsed or None
    return o


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
        stats["backlog_bytes"] = _size_bytes(backlog.group(1)) or 0
        stats["backlog_packets"] = stats["qlen"] = int(backlog.group(2))
        if backlog.group(3) is not None:
            stats["requeues"] = int(backlog.group(3))


def parse_tc_qdisc_show(text: Union[str, bytes], source: str = "tc qdisc show",
                        interface: Optional[str] = None) -> List[Dict[str, Any]]:
    """`tc [-s] qdisc show [dev X]` -> [{"interface", "kind", "handle", "parent", "root", "refcnt",
    "options", "stats", "line"}] in output order.

    ``interface`` is the device when the output comes from `tc qdisc show dev X` (which omits
    "dev X"). ``handle`` and ``parent`` are as printed ("8001:", "1f87:2"). ``options`` holds
    NETEM_KEYS for netem, else _generic_options. ``stats`` is None without -s, else STATS_KEYS
    from the " Sent ... (dropped N, overlimits N requeues N)" / " backlog Nb Np" lines
    (qlen is the backlog packet count, as tc prints it).
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
        w = _Words(line.split(), source, lineno)
        if w.take() != "qdisc":
            raise ParseError(source, lineno, "expected 'qdisc KIND HANDLE ...', got %r" % line[:60])
        kind = w.take(what="qdisc kind")
        handle = w.take(lambda h: h if _HANDLE.match(h) else None, "qdisc handle")
        entry: Dict[str, Any] = {"interface": interface, "kind": kind, "handle": handle, "parent": None,
                                 "root": False, "refcnt": None, "options": None, "stats": None, "line": lineno}
        while w.peek() in ("dev", "root", "parent", "refcnt"):
            word = w.take()
            if word == "root":
                entry["root"] = True
            elif word == "refcnt":
                entry["refcnt"] = w.integer("refcnt")
            else:
                entry["interface" if word == "dev" else "parent"] = w.take(what=word)
        entry["options"] = _netem_text_options(w) if kind == "netem" else _generic_options(w.words[w.i:])
        entries.append(entry)
    return entries


# --------------------------------------------------------------------------------------
# netem TCA_OPTIONS payload (include/uapi/linux/pkt_sched.h)
# --------------------------------------------------------------------------------------

TCA_NETEM_CORR, TCA_NETEM_DELAY_DIST, TCA_NETEM_REORDER, TCA_NETEM_CORRUPT, TCA_NETEM_LOSS = 1, 2, 3, 4, 5
TCA_NETEM_RATE, TCA_NETEM_ECN, TCA_NETEM_RATE64, TCA_NETEM_PAD, TCA_NETEM_LATENCY64 = 6, 7, 8, 9, 10
TCA_NETEM_JITTER64, TCA_NETEM_SLOT, TCA_NETEM_SLOT_DIST, TCA_NETEM_PRNG_SEED = 11, 12, 13, 14
NETEM_LOSS_GI, NETEM_LOSS_GE = 1, 2
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
UINT32_MAX = 0xFFFFFFFF
INT32_MAX = 0x7FFFFFFF
PSCHED_TICK_NS = 64  # PSCHED_SHIFT 6: the legacy u32 latency/jitter are in 64 ns ticks

# attribute -> struct format of its payload (a longer payload is accepted, a shorter one is not)
_ATTR_FORMAT = {
    TCA_NETEM_CORR: "III", TCA_NETEM_REORDER: "II", TCA_NETEM_CORRUPT: "II", TCA_NETEM_RATE: "IiIi",
    TCA_NETEM_ECN: "I", TCA_NETEM_RATE64: "Q", TCA_NETEM_LATENCY64: "q", TCA_NETEM_JITTER64: "q",
    TCA_NETEM_SLOT: "qqiiqq", TCA_NETEM_PRNG_SEED: "Q",
}
_QOPT = "IIIIII"  # latency, limit, loss, gap, duplicate, jitter


def _pct(value: int) -> Optional[float]:
    """u32 probability (UINT32_MAX = 100%) -> percent rounded to 6 decimals; 0 -> None (tc omits it)."""
    return round(value * 100.0 / UINT32_MAX, 6) if value else None


def _attributes(buf: bytes, start: int, end: int, order: str, source: str) -> List[Tuple[int, int, int]]:
    """Split the netlink attributes in buf[start:end] (u16 nla_len, u16 nla_type, payload, padding
    to 4 bytes) into (type, payload start, payload end); offsets in errors count from buf[0]."""
    attrs, off = [], start
    while off < end:
        if end - off < 4:
            raise ParseError(source, None, "truncated attribute header at byte %d" % off)
        length, kind = struct.unpack_from(order + "HH", buf, off)
        if length < 4 or off + length > end:
            raise ParseError(source, None, "attribute %d at byte %d claims %d bytes, %d left"
                             % (kind & NLA_TYPE_MASK, off, length, end - off))
        attrs.append((kind & NLA_TYPE_MASK, off + 4, off + length))
        off += (length + 3) & ~3
    return attrs


def _unpack(fmt: str, payload: bytes, order: str, source: str, what: str) -> Tuple[Any, ...]:
    size = struct.calcsize(order + fmt)
    if len(payload) < size:
        raise ParseError(source, None, "%s is %d bytes, %d expected" % (what, len(payload), size))
    return struct.unpack_from(order + fmt, payload)


def decode_netem_options(raw: Union[bytes, bytearray, memoryview], source: str = "netem TCA_OPTIONS",
                         byteorder: str = "=", tick_ns: float = PSCHED_TICK_NS) -> Dict[str, Any]:
    """Raw TCA_OPTIONS of a netem qdisc (struct tc_netem_qopt + nested TCA_NETEM_* attributes,
    in host byte order unless ``byteorder`` says "<" or ">") -> NETEM_KEYS.

    LATENCY64/JITTER64 (ns) win over the legacy u32 latency/jitter (``tick_ns`` per tick);
    RATE64 over the u32 rate (bytes/s; rate_bps is bits/s). DELAY_DIST / SLOT_DIST tables and
    PAD are skipped; unknown attribute numbers are listed in "unparsed".
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ParseError(source, None, "expected bytes, got %s" % type(raw).__name__)
    if byteorder not in ("=", "<", ">"):
        raise ParseError(source, None, "byteorder must be '=', '<' or '>'")
    buf = bytes(raw)
    latency, limit, loss, gap, duplicate, jitter = _unpack(_QOPT, buf, byteorder, source, "struct tc_netem_qopt")
    values: Dict[int, Tuple[Any, ...]] = {}
    loss_models: Dict[int, Tuple[Any, ...]] = {}
    unparsed: List[str] = []
    for kind, start, end in _attributes(buf, struct.calcsize(_QOPT), len(buf), byteorder, source):
        if kind in _ATTR_FORMAT:
            values[kind] = _unpack(_ATTR_FORMAT[kind], buf[start:end], byteorder, source, "attribute %d" % kind)
        elif kind == TCA_NETEM_LOSS:
            for model, model_start, model_end in _attributes(buf, start, end, byteorder, source):
                if model in (NETEM_LOSS_GI, NETEM_LOSS_GE):
                    loss_models[model] = _unpack("I" * (5 if model == NETEM_LOSS_GI else 4), buf[model_start:model_end],
                                                 byteorder, source, "loss model %d" % model)
        elif kind not in (TCA_NETEM_DELAY_DIST, TCA_NETEM_SLOT_DIST, TCA_NETEM_PAD):
            unparsed.append("attr %d" % kind)

    o = dict(NETEM_KEYS)
    delay_ns = values[TCA_NETEM_LATENCY64][0] if TCA_NETEM_LATENCY64 in values else latency * tick_ns
    jitter_ns = values[TCA_NETEM_JITTER64][0] if TCA_NETEM_JITTER64 in values else jitter * tick_ns
    delay_corr, loss_corr, dup_corr = values.get(TCA_NETEM_CORR, (0, 0, 0))
    o["limit"] = limit
    if delay_ns:
        o["delay_ms"] = delay_ns / 1e6
        if jitter_ns:
            o["jitter_ms"], o["delay_correlation"] = jitter_ns / 1e6, _pct(delay_corr)
    if loss:
        o["loss"], o["loss_correlation"], o["loss_model"] = _pct(loss), _pct(loss_corr), "random"
    if NETEM_LOSS_GI in loss_models:
        p13, p31, p32, p14, p23 = loss_models[NETEM_LOSS_GI]
        o["loss_model"] = "state"
        o["loss_state"] = {"p13": _pct(p13) or 0.0, "p31": _pct(p31) or 0.0, "p32": _pct(p32) or 0.0,
                           "p23": _pct(p23) or 0.0, "p14": _pct(p14) or 0.0}
    elif NETEM_LOSS_GE in loss_models:
        p, r, h, k1 = loss_models[NETEM_LOSS_GE]
        o["loss_model"] = "gemodel"
        o["loss_gemodel"] = {"p": _pct(p) or 0.0, "r": _pct(r) or 0.0, "1-h": _pct(UINT32_MAX - h) or 0.0,
                             "1-k": _pct(k1) or 0.0}
    o["ecn"] = bool(values.get(TCA_NETEM_ECN, (0,))[0])
    if duplicate:
        o["duplicate"], o["duplicate_correlation"] = _pct(duplicate), _pct(dup_corr)
    for key, attr in (("reorder", TCA_NETEM_REORDER), ("corrupt", TCA_NETEM_CORRUPT)):
        probability, correlation = values.get(attr, (0, 0))
        if probability:
            o[key], o[key + "_correlation"] = _pct(probability), _pct(correlation)
    o["gap"] = gap or None
    rate, packet_overhead, cell_size, cell_overhead = values.get(TCA_NETEM_RATE, (0, 0, 0, 0))
    if rate:
        o["rate_bps"] = 8 * (values[TCA_NETEM_RATE64][0] if TCA_NETEM_RATE64 in values else rate)
        o["packet_overhead"], o["cell_size"], o["cell_overhead"] = packet_overhead or None, cell_size or None, \
            cell_overhead or None
    if TCA_NETEM_SLOT in values:
        min_delay, max_delay, max_packets, max_bytes, dist_delay, dist_jitter = values[TCA_NETEM_SLOT]
        slot = dict.fromkeys(SLOT_KEYS)
        if dist_jitter > 0:
            slot["dist_delay_ms"], slot["dist_jitter_ms"] = dist_delay / 1e6, dist_jitter / 1e6
        else:
            slot["min_delay_ms"], slot["max_delay_ms"] = min_delay / 1e6, max_delay / 1e6
        slot["max_packets"] = max_packets if 0 < max_packets < INT32_MAX else None
        slot["max_bytes"] = max_bytes if 0 < max_bytes < INT32_MAX else None
        o["slot"] = slot
    if TCA_NETEM_PRNG_SEED in values:
        o["seed"] = values[TCA_NETEM_PRNG_SEED][0]
    o["unparsed"] = unparsed or None
    return o
