# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""netem options: one table, each entry one tc keyword, that drives every form the options take.

An entry knows its keys in the decoded options (NETEM_KEYS), how to read them from the words `tc qdisc show`
prints, how to decode them from and encode them into the kernel's TCA_OPTIONS payload (struct tc_netem_qopt and
the TCA_NETEM_* attributes of include/uapi/linux/pkt_sched.h), the words tc takes and prints for them, and the
human words a finding says. (ansible.netcommon's resource-module parsers keep each keyword's parse and render in
one entry the same way.) Times, rates, sizes and percentages are read by one unit parser (``time_ms``,
``rate_bps``, ``size_bytes``, ``percent``), for tc's text and the netem module's parameters alike.

Values follow iproute2's printing rules: what `tc` leaves out (a zero loss, a jitter of 0, ...) is None, so
decoding a kernel payload and parsing the line `tc` prints for it give the same dict; encoding is its inverse,
laid out as iproute2's tc lays it out (struct tc_netem_qopt, then CORR, REORDER, ECN, CORRUPT, SLOT, LOSS, RATE64,
RATE, PRNG_SEED; LATENCY64/JITTER64 when a time is not a whole number of 64 ns ticks).
Only ParseError is raised on bad input.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import re
import struct
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError, to_int
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.text import fmt_num
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.rtnetlink import NLA_F_NESTED, attributes, nla

TCA_NETEM_CORR, TCA_NETEM_DELAY_DIST, TCA_NETEM_REORDER, TCA_NETEM_CORRUPT, TCA_NETEM_LOSS = 1, 2, 3, 4, 5
TCA_NETEM_RATE, TCA_NETEM_ECN, TCA_NETEM_RATE64, TCA_NETEM_PAD, TCA_NETEM_LATENCY64 = 6, 7, 8, 9, 10
TCA_NETEM_JITTER64, TCA_NETEM_SLOT, TCA_NETEM_SLOT_DIST, TCA_NETEM_PRNG_SEED = 11, 12, 13, 14
NETEM_LOSS_GI, NETEM_LOSS_GE = 1, 2
UINT32_MAX = 0xFFFFFFFF
INT32_MAX = 0x7FFFFFFF
PSCHED_TICK_NS = 64  # PSCHED_SHIFT 6: the legacy u32 latency/jitter are in 64 ns ticks
DEFAULT_LIMIT = 1000  # tc's

# attribute -> struct format of its payload (a longer payload is accepted, a shorter one is not); the order in
# which the encoder writes them is iproute2's
ATTR_FORMAT = {
    TCA_NETEM_CORR: "III", TCA_NETEM_REORDER: "II", TCA_NETEM_ECN: "I", TCA_NETEM_CORRUPT: "II",
    TCA_NETEM_SLOT: "qqiiqq", TCA_NETEM_LOSS: "nested", TCA_NETEM_RATE64: "Q", TCA_NETEM_RATE: "IiIi",
    TCA_NETEM_PRNG_SEED: "Q", TCA_NETEM_LATENCY64: "q", TCA_NETEM_JITTER64: "q",
}
LOSS_MODEL_FORMAT = {NETEM_LOSS_GI: "IIIII", NETEM_LOSS_GE: "IIII"}
SKIPPED_ATTRS = (TCA_NETEM_DELAY_DIST, TCA_NETEM_SLOT_DIST, TCA_NETEM_PAD)
QOPT = ("latency", "limit", "loss", "gap", "duplicate", "jitter")  # struct tc_netem_qopt, u32 each
SLOT_KEYS = ("min_delay_ms", "max_delay_ms", "dist_delay_ms", "dist_jitter_ms", "max_packets", "max_bytes")
STATE_NAMES = ("p13", "p31", "p32", "p23", "p14")
GEMODEL_NAMES = ("p", "r", "1-h", "1-k")
# the order of the human words of a finding
HUMAN_ORDER = ("loss", "duplicate", "corrupt", "reorder", "delay", "loss model", "jitter", "rate")


# --------------------------------------------------------------------------------------------------------------
# the one unit parser
# --------------------------------------------------------------------------------------------------------------

# Numbers are bounded to 20 digits so that float() never meets a string past the str->int limits.
_NUM = r"([0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})"
_TIME = re.compile(r"^\s*%s\s*(s|secs?|ms|msecs?|us|usecs?|ns|nsecs?)?\s*$" % _NUM, re.I)
_TIME_SCALE = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1000000)}  # to ms: * multiply / divide
_PERCENT = re.compile(r"^\s*%s\s*(%%)?\s*$" % _NUM)
_RATE = re.compile(r"^\s*%s\s*(?:([kmgt])(i?))?(bit|bps)?\s*$" % _NUM, re.I)
_SIZE = re.compile(r"^%s([KMG]?)b$" % _NUM)


def time_ms(token: str, bare: str = "us") -> Optional[float]:
    """A tc time ("100ms", "1.0ms", "2.5s", "100us", "10ns") -> milliseconds, or None when it is not one.

    A bare number is in ``bare`` units: microseconds as tc prints and takes them, "ms" for the netem module.
    """
    m = _TIME.match(token)
    if not m:
        return None
    unit = (m.group(2) or bare).lower()
    multiply, divide = _TIME_SCALE[unit[:1] if unit[:1] == "s" else unit[:2]]
    return float(m.group(1)) * multiply / divide


def percent(token: str, sign: bool = True) -> Optional[float]:
    """A percentage ("30%", "0.5%"; without ``sign`` the % may be left out) -> float, or None."""
    m = _PERCENT.match(token)
    if not m or sign and not m.group(2):
        return None
    return float(m.group(1))


def rate_bps(token: str, bare: bool = False) -> Optional[int]:
    """A tc rate ("20Kbit", "1mbit", "100Kibit"; "...bps" is bytes/s) -> bits per second, or None.

    With ``bare``, a number without a unit is bits per second (the netem module's parameter).
    """
    m = _RATE.match(token)
    if not m or not bare and not m.group(4):
        return None
    power = " kmgt".index((m.group(2) or " ").lower())
    value = float(m.group(1)) * (1024 if m.group(3) else 1000) ** power
    return int(round(value * (8 if (m.group(4) or "").lower() == "bps" else 1)))


def size_bytes(token: str) -> Optional[int]:
    """A tc size as it prints one ("0b", "1514b", "12Kb") -> bytes, or None."""
    m = _SIZE.match(token)
    if not m:
        return None
    return int(round(float(m.group(1)) * 1024 ** " KMG".index(m.group(2) or " ")))


class Words:
    """A cursor over one line's words that raises ParseError on a missing or bad value."""

    def __init__(self, words: List[str], source: str, line: Optional[int]) -> None:
        self.words, self.source, self.line, self.i = words, source, line, 0

    def more(self) -> bool:
        return self.i < len(self.words)

    def peek(self) -> str:
        return self.words[self.i] if self.more() else ""

    def take(self, convert: Optional[Callable[[str], Any]] = None, what: str = "value") -> Any:
        if not self.more():
            raise ParseError(self.source, self.line, "missing %s at the end" % what)
        word = self.words[self.i]
        value = convert(word) if convert else word
        if value is None:
            raise ParseError(self.source, self.line, "%r is not a valid %s" % (word[:40], what))
        self.i += 1
        return value

    def take_if(self, convert: Callable[[str], Any]) -> Any:
        """The next word converted if it converts, else None (the word is left)."""
        value = convert(self.peek()) if self.more() else None
        if value is not None:
            self.i += 1
        return value

    def integer(self, what: str) -> int:
        return self.take(lambda w: to_int(w, self.source, self.line), what)


# --------------------------------------------------------------------------------------------------------------
# number forms: the kernel's u32 probabilities, tc's words, human words
# --------------------------------------------------------------------------------------------------------------

def _pct(value: int) -> Optional[float]:
    """u32 probability (UINT32_MAX = 100%) -> percent rounded to 6 decimals; 0 -> None (tc omits it)."""
    return round(value * 100.0 / UINT32_MAX, 6) if value else None


def _u32pct(pct: Optional[float]) -> int:
    """Percent -> the kernel's u32 probability, rounded as iproute2 does (rint(p / 100 * UINT32_MAX))."""
    if not pct:
        return 0
    return max(0, min(UINT32_MAX, int(round(pct / 100.0 * UINT32_MAX))))


def _ns(ms: Optional[float]) -> int:
    return int(round((ms or 0) * 1e6))


def _num(value: float) -> str:
    text = ("%.6f" % value).rstrip("0").rstrip(".")
    return text or "0"


def _time(ms: float) -> str:
    ns = _ns(ms)
    if ns % 10 ** 6 == 0:
        return "%dms" % (ns // 10 ** 6)
    if ns % 1000 == 0:
        return "%dus" % (ns // 1000)
    return "%sus" % _num(ns / 1000.0)


def _rate(bps: int) -> str:
    for unit, scale in (("Gbit", 10 ** 9), ("Mbit", 10 ** 6), ("Kbit", 1000)):
        if bps >= scale and bps % scale == 0:
            return "%d%s" % (bps // scale, unit)
    return "%dbit" % bps


class Wire:
    """The TCA_OPTIONS payload taken apart: struct tc_netem_qopt's fields by name, the attributes' values by number
    (the nested loss models by model number), and the length of a legacy tick."""

    def __init__(self, tick_ns: float = PSCHED_TICK_NS) -> None:
        self.qopt: Dict[str, int] = dict.fromkeys(QOPT, 0)
        self.attrs: Dict[int, Tuple[Any, ...]] = {}
        self.loss_models: Dict[int, Tuple[int, ...]] = {}
        self.corr = [0, 0, 0]  # TCA_NETEM_CORR: delay, loss, duplicate correlation
        self.tick_ns = tick_ns


# --------------------------------------------------------------------------------------------------------------
# the option table
# --------------------------------------------------------------------------------------------------------------

class Option:
    """One tc keyword of netem (and the words that only follow it)."""

    word = ""
    more: Tuple[str, ...] = ()  # further keywords this entry reads
    keys: Dict[str, Any] = {}  # decoded keys it owns, with their value when off

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        """Read the values after ``word`` (this entry's keyword or one of ``more``) into ``o``; False: not ours."""
        raise NotImplementedError

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        """tc's words for it (``show``: as `tc qdisc show` prints them), [] when it is off."""
        raise NotImplementedError

    def human(self, o: Dict[str, Any]) -> Dict[str, str]:
        """Human words, by their place in HUMAN_ORDER."""
        return {}

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        raise NotImplementedError

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        raise NotImplementedError


class _Limit(Option):
    word, keys = "limit", {"limit": None}

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        o["limit"] = w.integer("limit")
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        return ["limit", str(o["limit"] if o.get("limit") is not None else DEFAULT_LIMIT)]

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        o["limit"] = wire.qopt["limit"]

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        wire.qopt["limit"] = DEFAULT_LIMIT if o.get("limit") is None else o["limit"]


class _Delay(Option):
    word, keys = "delay", {"delay_ms": None, "jitter_ms": None, "delay_correlation": None}

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        o["delay_ms"] = w.take(time_ms, "delay time")
        o["jitter_ms"] = w.take_if(time_ms)
        o["delay_correlation"] = w.take_if(percent)
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        if not o.get("delay_ms"):
            return []
        out = ["delay", _time(o["delay_ms"])]
        if o.get("jitter_ms"):
            out.append(_time(o["jitter_ms"]))
            if o.get("delay_correlation"):
                out.append(_num(o["delay_correlation"]) + "%")
        return out

    def human(self, o: Dict[str, Any]) -> Dict[str, str]:
        return dict((key, "%s %s ms" % (key, fmt_num(o[key + "_ms"]))) for key in ("delay", "jitter") if o.get(key + "_ms"))

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        delay_ns = wire.attrs[TCA_NETEM_LATENCY64][0] if TCA_NETEM_LATENCY64 in wire.attrs \
            else wire.qopt["latency"] * wire.tick_ns
        jitter_ns = wire.attrs[TCA_NETEM_JITTER64][0] if TCA_NETEM_JITTER64 in wire.attrs \
            else wire.qopt["jitter"] * wire.tick_ns
        if delay_ns:
            o["delay_ms"] = delay_ns / 1e6
            if jitter_ns:
                o["jitter_ms"], o["delay_correlation"] = jitter_ns / 1e6, _pct(wire.corr[0])

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        for field, attr, ns in (("latency", TCA_NETEM_LATENCY64, _ns(o.get("delay_ms"))),
                                ("jitter", TCA_NETEM_JITTER64, _ns(o.get("jitter_ms")))):
            wire.qopt[field] = min(ns // PSCHED_TICK_NS, UINT32_MAX)
            if ns % PSCHED_TICK_NS or ns // PSCHED_TICK_NS > UINT32_MAX:
                wire.attrs[attr] = (ns,)
        wire.corr[0] = _u32pct(o.get("delay_correlation"))


class _Loss(Option):
    word = "loss"
    keys = {"loss": None, "loss_correlation": None,
            "loss_model": None,    # "random" (loss N%), "state" (4-state model) or "gemodel" (Gilbert-Elliott)
            "loss_state": None,    # {"p13", "p31", "p32", "p23", "p14"} percent
            "loss_gemodel": None}  # {"p", "r", "1-h", "1-k"} percent, as tc prints them
    MODELS = {"state": (NETEM_LOSS_GI, STATE_NAMES), "gemodel": (NETEM_LOSS_GE, GEMODEL_NAMES)}

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        if w.peek() in self.MODELS:
            model = w.take()
            names = self.MODELS[model][1]
            values = {}
            while w.peek() in names:
                name = w.take()
                values[name] = w.take(percent, "%s percentage" % name)
            o["loss_model"], o["loss_%s" % model] = model, dict((n, values.get(n)) for n in names)
            return True
        if w.peek() == "random":
            w.take()
        o["loss"], o["loss_model"] = w.take(percent, "loss percentage"), "random"
        o["loss_correlation"] = w.take_if(percent)
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        out: List[str] = []
        for model, (_attr, names) in self.MODELS.items():
            if o.get("loss_model") == model and o.get("loss_" + model):
                out += ["loss", model]
                for name in names:
                    out += ([name] if show else []) + [_num(o["loss_" + model].get(name) or 0) + "%"]
        if o.get("loss") and o.get("loss_model") in (None, "random"):
            out += ["loss", _num(o["loss"]) + "%"]
            if o.get("loss_correlation"):
                out.append(_num(o["loss_correlation"]) + "%")
        return out

    def human(self, o: Dict[str, Any]) -> Dict[str, str]:
        out = {}
        if o.get("loss"):
            out["loss"] = "loss %s%%" % fmt_num(o["loss"])
        if o.get("loss_model") in self.MODELS:
            out["loss model"] = "loss model %s" % o["loss_model"]
        return out

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        if wire.qopt["loss"]:
            o["loss"], o["loss_correlation"], o["loss_model"] = _pct(wire.qopt["loss"]), _pct(wire.corr[1]), "random"
        if NETEM_LOSS_GI in wire.loss_models:
            p13, p31, p32, p14, p23 = wire.loss_models[NETEM_LOSS_GI]
            o["loss_model"] = "state"
            o["loss_state"] = {"p13": _pct(p13) or 0.0, "p31": _pct(p31) or 0.0, "p32": _pct(p32) or 0.0,
                               "p23": _pct(p23) or 0.0, "p14": _pct(p14) or 0.0}
        elif NETEM_LOSS_GE in wire.loss_models:
            p, r, h, k1 = wire.loss_models[NETEM_LOSS_GE]
            o["loss_model"] = "gemodel"
            o["loss_gemodel"] = {"p": _pct(p) or 0.0, "r": _pct(r) or 0.0, "1-h": _pct(UINT32_MAX - h) or 0.0,
                                 "1-k": _pct(k1) or 0.0}

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        wire.qopt["loss"] = _u32pct(o.get("loss"))
        wire.corr[1] = _u32pct(o.get("loss_correlation"))
        model = o.get("loss_model")
        if model == "state" and o.get("loss_state"):
            s = o["loss_state"]
            wire.loss_models[NETEM_LOSS_GI] = tuple(_u32pct(s.get(k)) for k in ("p13", "p31", "p32", "p14", "p23"))
        elif model == "gemodel" and o.get("loss_gemodel"):
            g = o["loss_gemodel"]
            wire.loss_models[NETEM_LOSS_GE] = (_u32pct(g.get("p")), _u32pct(g.get("r")),
                                               UINT32_MAX - _u32pct(g.get("1-h")), _u32pct(g.get("1-k")))


class _Ecn(Option):
    word, keys = "ecn", {"ecn": False}

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        o["ecn"] = True
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        return ["ecn"] if o.get("ecn") else []

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        o["ecn"] = bool(wire.attrs.get(TCA_NETEM_ECN, (0,))[0])

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        if o.get("ecn"):
            wire.attrs[TCA_NETEM_ECN] = (1,)


class _Chance(Option):
    """duplicate (struct tc_netem_qopt and TCA_NETEM_CORR), reorder and corrupt (an attribute each): a probability
    and its correlation."""

    def __init__(self, word: str, attr: Optional[int]) -> None:
        self.word, self.attr = word, attr
        self.keys = {word: None, word + "_correlation": None}

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        o[word] = w.take(percent, "%s percentage" % word)
        o[word + "_correlation"] = w.take_if(percent)
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        if not o.get(self.word):
            return []
        out = [self.word, _num(o[self.word]) + "%"]
        if o.get(self.word + "_correlation"):
            out.append(_num(o[self.word + "_correlation"]) + "%")
        return out

    def human(self, o: Dict[str, Any]) -> Dict[str, str]:
        return {self.word: "%s %s%%" % (self.word, fmt_num(o[self.word]))} if o.get(self.word) else {}

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        if self.attr is None:
            probability, correlation = wire.qopt[self.word], wire.corr[2]
        else:
            probability, correlation = wire.attrs.get(self.attr, (0, 0))
        if probability:
            o[self.word], o[self.word + "_correlation"] = _pct(probability), _pct(correlation)

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        probability, correlation = _u32pct(o.get(self.word)), _u32pct(o.get(self.word + "_correlation"))
        if self.attr is None:
            wire.qopt[self.word], wire.corr[2] = probability, correlation
        elif probability:
            wire.attrs[self.attr] = (probability, correlation)


class _Gap(Option):
    word, keys = "gap", {"gap": None}

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        o["gap"] = w.integer("gap")
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        return ["gap", str(o["gap"])] if o.get("gap") else []

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        o["gap"] = wire.qopt["gap"] or None

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        wire.qopt["gap"] = o.get("gap") or 0


class _Rate(Option):
    word, more = "rate", ("packetoverhead", "cellsize", "celloverhead")
    keys = {"rate_bps": None, "packet_overhead": None, "cell_size": None, "cell_overhead": None}
    OVERHEADS = (("packet_overhead", "packetoverhead"), ("cell_size", "cellsize"), ("cell_overhead", "celloverhead"))

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        if word == "rate":
            o["rate_bps"] = w.take(rate_bps, "rate")
        else:
            o[dict((b, a) for a, b in self.OVERHEADS)[word]] = w.integer(word)
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        if not o.get("rate_bps"):
            return []
        out = ["rate", _rate(o["rate_bps"])]
        for key, word in self.OVERHEADS:
            if o.get(key):
                out += [word, str(o[key])]
        return out

    def human(self, o: Dict[str, Any]) -> Dict[str, str]:
        return {"rate": "rate %s bit/s" % fmt_num(o["rate_bps"])} if o.get("rate_bps") else {}

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        rate, packet_overhead, cell_size, cell_overhead = wire.attrs.get(TCA_NETEM_RATE, (0, 0, 0, 0))
        if rate:
            o["rate_bps"] = 8 * (wire.attrs[TCA_NETEM_RATE64][0] if TCA_NETEM_RATE64 in wire.attrs else rate)
            o["packet_overhead"], o["cell_size"], o["cell_overhead"] = packet_overhead or None, cell_size or None, \
                cell_overhead or None

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        rate_bytes = (o.get("rate_bps") or 0) // 8
        if rate_bytes:
            if rate_bytes > UINT32_MAX - 1:
                wire.attrs[TCA_NETEM_RATE64] = (rate_bytes,)
            wire.attrs[TCA_NETEM_RATE] = (min(rate_bytes, UINT32_MAX), o.get("packet_overhead") or 0,
                                          o.get("cell_size") or 0, o.get("cell_overhead") or 0)


class _Slot(Option):
    word, more = "slot", ("packets", "bytes")
    # {"min_delay_ms", "max_delay_ms", "dist_delay_ms", "dist_jitter_ms", "max_packets", "max_bytes"}
    keys = {"slot": None}

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        if word != "slot":
            if o["slot"] is None:
                return False  # "packets" / "bytes" mean something only after slot
            o["slot"]["max_" + word] = w.integer("slot " + word)
            return True
        slot = dict.fromkeys(SLOT_KEYS)
        if w.peek() == "distribution":
            w.take()
            slot["dist_delay_ms"] = w.take(time_ms, "slot delay")
            slot["dist_jitter_ms"] = w.take(time_ms, "slot jitter")
        else:
            slot["min_delay_ms"] = w.take(time_ms, "slot min delay")
            slot["max_delay_ms"] = w.take_if(time_ms)
        o["slot"] = slot
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        slot = o.get("slot")
        if not slot:
            return []
        if slot.get("dist_jitter_ms"):
            out = ["slot", "distribution", "normal", _time(slot.get("dist_delay_ms") or 0), _time(slot["dist_jitter_ms"])]
        else:
            out = ["slot", _time(slot.get("min_delay_ms") or 0), _time(slot.get("max_delay_ms") or 0)]
        for key in ("packets", "bytes"):
            if slot.get("max_" + key):
                out += [key, str(slot["max_" + key])]
        return out

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        if TCA_NETEM_SLOT not in wire.attrs:
            return
        min_delay, max_delay, max_packets, max_bytes, dist_delay, dist_jitter = wire.attrs[TCA_NETEM_SLOT]
        slot = dict.fromkeys(SLOT_KEYS)
        if dist_jitter > 0:
            slot["dist_delay_ms"], slot["dist_jitter_ms"] = dist_delay / 1e6, dist_jitter / 1e6
        else:
            slot["min_delay_ms"], slot["max_delay_ms"] = min_delay / 1e6, max_delay / 1e6
        slot["max_packets"] = max_packets if 0 < max_packets < INT32_MAX else None
        slot["max_bytes"] = max_bytes if 0 < max_bytes < INT32_MAX else None
        o["slot"] = slot

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        slot = o.get("slot")
        if slot:
            wire.attrs[TCA_NETEM_SLOT] = (_ns(slot.get("min_delay_ms")), _ns(slot.get("max_delay_ms")),
                                          slot.get("max_packets") or 0, slot.get("max_bytes") or 0,
                                          _ns(slot.get("dist_delay_ms")), _ns(slot.get("dist_jitter_ms")))


class _Seed(Option):
    word, keys = "seed", {"seed": None}

    def parse(self, word: str, w: Words, o: Dict[str, Any]) -> bool:
        o["seed"] = w.integer("seed")
        return True

    def render(self, o: Dict[str, Any], show: bool) -> List[str]:
        return ["seed", str(o["seed"])] if o.get("seed") is not None else []

    def decode(self, wire: Wire, o: Dict[str, Any]) -> None:
        if TCA_NETEM_PRNG_SEED in wire.attrs:
            o["seed"] = wire.attrs[TCA_NETEM_PRNG_SEED][0]

    def encode(self, o: Dict[str, Any], wire: Wire) -> None:
        if o.get("seed") is not None:
            wire.attrs[TCA_NETEM_PRNG_SEED] = (o["seed"],)


# In the order tc writes the words.
OPTIONS: Tuple[Option, ...] = (_Limit(), _Delay(), _Loss(), _Ecn(), _Chance("duplicate", None),
                               _Chance("reorder", TCA_NETEM_REORDER), _Chance("corrupt", TCA_NETEM_CORRUPT), _Gap(),
                               _Rate(), _Slot(), _Seed())
_BY_WORD = dict((word, opt) for opt in OPTIONS for word in (opt.word,) + opt.more)

# netem option keys, every entry's. Times are in milliseconds, probabilities in percent (0-100).
NETEM_KEYS: Dict[str, Any] = dict((k, v) for opt in OPTIONS for k, v in opt.keys.items())
NETEM_KEYS["unparsed"] = None  # words (text) or attribute numbers (raw) this table does not know, else None
LOSSY = ("loss", "duplicate", "corrupt")


# --------------------------------------------------------------------------------------------------------------
# the forms, each driven by the table
# --------------------------------------------------------------------------------------------------------------

def parse_words(w: Words) -> Dict[str, Any]:
    """The rest of a `tc qdisc show` netem line (after its parent) -> NETEM_KEYS."""
    o = dict(NETEM_KEYS)
    unparsed: List[str] = []
    while w.more():
        word = w.take()
        opt = _BY_WORD.get(word)
        if opt is None or not opt.parse(word, w, o):
            unparsed.append(word)
    o["unparsed"] = unparsed or None
    return o


def words(o: Dict[str, Any], show: bool = False) -> List[str]:
    """The options as tc takes them (``limit 1000 delay 100ms 10ms loss 30%`` ...), or with ``show`` as
    ``tc qdisc show`` prints them (loss models with their parameter names)."""
    return [word for opt in OPTIONS for word in opt.render(o, show)]


def human(o: Dict[str, Any]) -> str:
    """What the options do, in a finding's words ("loss 30%, delay 100 ms"), or "no impairment set"."""
    phrases: Dict[str, str] = {}
    for opt in OPTIONS:
        phrases.update(opt.human(o))
    return ", ".join(phrases[k] for k in HUMAN_ORDER if k in phrases) or "no impairment set"


def lossy(o: Dict[str, Any]) -> bool:
    """Whether the options lose packets (loss, duplicate, corrupt, or a loss model), not only delay or shape them."""
    return any(o.get(k) for k in LOSSY) or o.get("loss_model") in _Loss.MODELS


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
    wire = Wire(tick_ns)
    qopt_format = "I" * len(QOPT)
    wire.qopt = dict(zip(QOPT, _unpack(qopt_format, buf, byteorder, source, "struct tc_netem_qopt")))
    unparsed: List[str] = []
    for kind, start, end in attributes(buf, struct.calcsize(qopt_format), len(buf), source, byteorder):
        fmt = ATTR_FORMAT.get(kind)
        if fmt == "nested":
            for model, model_start, model_end in attributes(buf, start, end, source, byteorder):
                if model in LOSS_MODEL_FORMAT:
                    wire.loss_models[model] = _unpack(LOSS_MODEL_FORMAT[model], buf[model_start:model_end],
                                                      byteorder, source, "loss model %d" % model)
        elif fmt is not None:
            wire.attrs[kind] = _unpack(fmt, buf[start:end], byteorder, source, "attribute %d" % kind)
        elif kind not in SKIPPED_ATTRS:
            unparsed.append("attr %d" % kind)
    wire.corr = list(wire.attrs.get(TCA_NETEM_CORR, (0, 0, 0)))
    o = dict(NETEM_KEYS)
    for opt in OPTIONS:
        opt.decode(wire, o)
    o["unparsed"] = unparsed or None
    return o


def encode_netem_options(o: Dict[str, Any]) -> bytes:
    """NETEM_KEYS -> the TCA_OPTIONS payload (host byte order) that decode_netem_options reads back as ``o``.

    Keys left out or None are off; ``limit`` defaults to 1000 as with tc.
    """
    wire = Wire()
    for opt in OPTIONS:
        opt.encode(o, wire)
    if any(wire.corr):
        wire.attrs[TCA_NETEM_CORR] = tuple(wire.corr)
    if wire.loss_models:
        wire.attrs[TCA_NETEM_LOSS] = ()
    out = struct.pack("=" + "I" * len(QOPT), *[wire.qopt[k] for k in QOPT])
    for attr, fmt in ATTR_FORMAT.items():
        if attr not in wire.attrs:
            continue
        if fmt == "nested":
            nested = b"".join(nla(model, struct.pack("=" + LOSS_MODEL_FORMAT[model], *values))
                              for model, values in sorted(wire.loss_models.items()))
            out += nla(attr | NLA_F_NESTED, nested)
        else:
            out += nla(attr, struct.pack("=" + fmt, *wire.attrs[attr]))
    return out


__all__ = ["NETEM_KEYS", "OPTIONS", "SLOT_KEYS", "Words", "time_ms", "percent", "rate_bps", "size_bytes",
           "parse_words", "words", "human", "lossy", "decode_netem_options", "encode_netem_options"]
