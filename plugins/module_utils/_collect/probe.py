# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TCP probes of one host:port: N attempts at an interval, as ``hping3 -c N -S -p PORT`` measures loss.

``connect``: a full TCP handshake per attempt with a non-blocking connect() (unprivileged).
``syn``: a raw SYN per attempt from its own source port; a SYN-ACK or a RST answers it (needs CAP_NET_RAW).
The local kernel resets the SYN-ACK itself (no socket owns the connection), as with hping3.

Attempts are sent on a fixed schedule (one every ``interval`` seconds) whether or not earlier ones were
answered, and each waits at most ``timeout`` seconds, so a lossy target costs no extra time.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import ctypes
import errno
import math
import os
import selectors
import socket
import struct
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

MODES = ("connect", "syn")
FAMILIES = ("any", "ipv4", "ipv6")
# What a probe does when not told otherwise (the probe module, the diagnose action and run() take these).
DEFAULTS: Dict[str, Any] = {"mode": "connect", "count": 10, "interval": 0.2, "timeout": 1.0, "family": "any"}
TCP_SYN, TCP_RST, TCP_ACK = 0x02, 0x04, 0x10
IPV6_CHECKSUM = getattr(socket, "IPV6_CHECKSUM", 7)
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
RAW_RCVBUF = 4 << 20
_UNREACHABLE = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN)


class ProbeError(Exception):
    """The probe cannot run (bad address, missing privilege); the message says why."""


def resolve(host: str, port: int, family: str = "any") -> Tuple[int, Tuple[Any, ...]]:
    """(address family, sockaddr) of ``host``; ``family`` any, ipv4 or ipv6."""
    fam = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[family]
    try:
        infos = socket.getaddrinfo(host, port, fam, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ProbeError("cannot resolve %s: %s" % (host, exc.strerror))
    if not infos:
        raise ProbeError("cannot resolve %s" % host)
    # prefer IPv4 with family any, as hping3 and most clients do for dual-stack names
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    return infos[0][0], infos[0][4]


def percentile(sorted_values: List[float], pct: float) -> Optional[float]:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, int(math.ceil(pct / 100.0 * len(sorted_values))))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(attempts: List[Dict[str, Any]]) -> Dict[str, Any]:
    sent = len(attempts)
    answered = [a for a in attempts if a["status"] in ("open", "refused")]
    rtts = sorted(a["rtt_ms"] for a in answered if a["rtt_ms"] is not None)
    rtt: Dict[str, Optional[float]] = {"min": None, "avg": None, "max": None, "p50": None, "p95": None}
    if rtts:
        rtt = {"min": round(rtts[0], 3), "avg": round(sum(rtts) / len(rtts), 3), "max": round(rtts[-1], 3),
               "p50": round(percentile(rtts, 50) or 0.0, 3), "p95": round(percentile(rtts, 95) or 0.0, 3)}
    lost = sent - len(answered)
    return {
        "sent": sent,
        "answered": len(answered),
        "lost": lost,
        "loss_percent": round(100.0 * lost / sent, 2) if sent else 0.0,
        "open": sum(1 for a in attempts if a["status"] == "open"),
        "refused": sum(1 for a in attempts if a["status"] == "refused"),
        "rtt_ms": rtt,
    }


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_segment(src: str, dst: str, sport: int, dport: int, seq: int, ipv6: bool = False) -> bytes:
    """A TCP SYN with an MSS option; the checksum is filled for IPv4 (the kernel fills it for IPv6)."""
    options = struct.pack("!BBH", 2, 4, 1460)
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, TCP_SYN, 64240, 0, 0) + options
    if ipv6:
        return header
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    csum = _checksum(pseudo + header)
    return header[:16] + struct.pack("!H", csum) + header[18:]


def parse_reply(data: bytes, ipv6: bool) -> Optional[Tuple[str, int, int, int, int]]:
    """(source address, source port, destination port, ack, flags) of a TCP segment read from a raw socket.

    IPv4 raw sockets return the IP header, IPv6 ones do not (the source address is then "": recvfrom has it).
    """
    if ipv6:
        src, seg = "", data
    else:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        ihl = (data[0] & 0x0F) * 4
        src, seg = socket.inet_ntoa(data[12:16]), data[ihl:]
    if len(seg) < 20:
        return None
    sport, dport, ack, flags = _tcp_fields(seg)
    return src, sport, dport, ack, flags


def _tcp_fields(seg: bytes) -> Tuple[int, int, int, int]:
    sport, dport, _seq, ack, _off, flags = struct.unpack("!HHIIBB", seg[:14])
    return sport, dport, ack, flags


def reply_filter(dst: str, dport: int, ipv6: bool) -> List[Tuple[int, int, int, int]]:
    """A classic BPF program (code, jt, jf, k) keeping only segments from ``dst``:``dport``.

    A raw TCP socket gets a copy of every TCP segment the host receives; on a busy host its buffer overflows
    and replies are lost unless the kernel filters them first. IPv4 raw sockets see the IP header (source
    address at offset 12, header length in the low nibble of byte 0); IPv6 ones start at the TCP header.
    """
    accept, drop = (0x06, 0, 0, 0x40000), (0x06, 0, 0, 0)
    if ipv6:
        return [(0x28, 0, 0, 0),            # ldh [0]             TCP source port
                (0x15, 0, 1, dport),        # jeq #dport, accept, drop
                accept, drop]
    addr = struct.unpack("!I", socket.inet_aton(dst))[0]
    return [(0x20, 0, 0, 12),               # ld [12]             IPv4 source address
            (0x15, 0, 4, addr),             # jeq #dst, next, drop
            (0xB1, 0, 0, 0),                # ldxb 4*([0]&0xf)    IPv4 header length
            (0x48, 0, 0, 0),                # ldh [x+0]           TCP source port
            (0x15, 0, 1, dport),            # jeq #dport, accept, drop
            accept, drop]


def _attach_filter(sock: socket.socket, program: List[Tuple[int, int, int, int]]) -> "ctypes.Array[ctypes.c_char]":
    """SO_ATTACH_FILTER; returns the buffer holding the program (kept alive while the socket is set up)."""
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    return buf


def _source_address(family: int, sockaddr: Tuple[Any, ...]) -> str:
    """The local address the kernel would use towards ``sockaddr`` (no packet is sent)."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.connect(sockaddr)
        return s.getsockname()[0]
    except OSError as exc:
        raise ProbeError("no route to %s: %s" % (sockaddr[0], exc.strerror))
    finally:
        s.close()


def _attempt(seq: int) -> Dict[str, Any]:
    return {"seq": seq, "status": "timeout", "reply": None, "rtt_ms": None, "error": None}


def _status_of(err: int) -> str:
    if err == 0:
        return "open"
    if err == errno.ECONNREFUSED:
        return "refused"
    if err in _UNREACHABLE:
        return "unreachable"
    if err == errno.ETIMEDOUT:
        return "timeout"
    return "error"


def _schedule(count: int, interval: float, timeout: float, pending: Dict[Any, Tuple[Any, ...]],
              send: Callable[[int], None], expire: Callable[[Tuple[Any, ...]], None],
              wait: Callable[[float], None]) -> None:
    """The send loop both modes share: attempt i goes out at start + i * interval (``send(i)``); a ``pending``
    entry (key -> (sent at, ...)) is dropped ``timeout`` seconds after it went out (``expire(entry)`` first);
    in between, ``wait(seconds)`` takes the replies that come until the next deadline."""
    start = time.monotonic()
    sent = 0
    while sent < count or pending:
        now = time.monotonic()
        if sent < count and now >= start + sent * interval:
            send(sent)
            sent += 1
            continue
        for key, entry in list(pending.items()):
            if now - entry[0] >= timeout:
                expire(entry)
                del pending[key]
        deadlines = [entry[0] + timeout for entry in pending.values()]
        if sent < count:
            deadlines.append(start + sent * interval)
        wait(max(0.0, min(deadlines) - time.monotonic()) if deadlines else 0.0)


def probe_connect(family: int, sockaddr: Tuple[Any, ...], count: int, interval: float, timeout: float) -> List[Dict[str, Any]]:
    attempts = [_attempt(i + 1) for i in range(count)]
    sel = selectors.DefaultSelector()
    pending: Dict[int, Tuple[float, socket.socket, Dict[str, Any]]] = {}  # seq -> (sent at, socket, attempt)

    def send(i: int) -> None:
        a = attempts[i]
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        t0 = time.monotonic()
        err = s.connect_ex(sockaddr)
        if err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sel.register(s, selectors.EVENT_WRITE, a["seq"])
            pending[a["seq"]] = (t0, s, a)
        else:
            _finish_connect(a, s, err, t0)

    def expire(entry: Tuple[Any, ...]) -> None:
        sel.unregister(entry[1])
        entry[1].close()

    def wait(seconds: float) -> None:
        for key, _mask in sel.select(seconds):
            t0, s, a = pending.pop(key.data)
            sel.unregister(s)
            _finish_connect(a, s, s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), t0)

    try:
        _schedule(count, interval, timeout, pending, send, expire, wait)
    finally:
        for _t0, s, _a in pending.values():
            s.close()
        sel.close()
    return attempts


def _finish_connect(a: Dict[str, Any], s: socket.socket, err: int, t0: float) -> None:
    rtt = (time.monotonic() - t0) * 1000.0
    a["status"] = _status_of(err)
    if a["status"] in ("open", "refused"):
        a["rtt_ms"] = round(rtt, 3)
        a["reply"] = "syn-ack" if a["status"] == "open" else "rst"
    elif a["status"] != "timeout":
        a["error"] = os.strerror(err)
    s.close()


def probe_syn(family: int, sockaddr: Tuple[Any, ...], count: int, interval: float, timeout: float) -> List[Dict[str, Any]]:
    ipv6 = family == socket.AF_INET6
    dst, dport = sockaddr[0], sockaddr[1]
    src = _source_address(family, sockaddr)
    try:
        raw = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP)
    except PermissionError:
        raise ProbeError("mode syn sends raw TCP segments and needs CAP_NET_RAW (run as root, become: true), "
                         "or use mode connect")
    if ipv6:
        raw.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 16)
    try:
        _attach_filter(raw, reply_filter(dst, dport, ipv6))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RAW_RCVBUF)
    except OSError:
        pass  # without the filter replies are still matched below; only a very busy host may lose some
    while True:  # segments queued before the filter was attached
        try:
            raw.recv(65535, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
    raw.setblocking(False)
    attempts = [_attempt(i + 1) for i in range(count)]
    reserved: List[socket.socket] = []  # each attempt's source port, held so nothing else takes it meanwhile
    pending: Dict[int, Tuple[float, int, Dict[str, Any]]] = {}  # source port -> (sent at, seq number, attempt)
    sel = selectors.DefaultSelector()
    sel.register(raw, selectors.EVENT_READ)
    scope = (0, sockaddr[3] if len(sockaddr) > 3 else 0) if ipv6 else ()

    def send(i: int) -> None:
        a = attempts[i]
        hold = socket.socket(family, socket.SOCK_STREAM)
        hold.bind((src, 0) + scope)
        reserved.append(hold)
        sport = hold.getsockname()[1]
        isn = int.from_bytes(os.urandom(4), "big")
        segment = syn_segment(src, dst, sport, dport, isn, ipv6)
        t0 = time.monotonic()
        try:
            raw.sendto(segment, (dst, 0) + scope)
        except OSError as exc:
            a["status"] = _status_of(exc.errno or 0) if exc.errno in _UNREACHABLE else "error"
            a["error"] = exc.strerror
            return
        pending[sport] = (t0, isn, a)

    def wait(seconds: float) -> None:
        if sel.select(seconds):
            _read_replies(raw, ipv6, dst, dport, pending)

    try:
        _schedule(count, interval, timeout, pending, send, lambda entry: None, wait)
    finally:
        sel.close()
        raw.close()
        for s in reserved:
            s.close()
    return attempts


def _read_replies(raw: socket.socket, ipv6: bool, dst: str, dport: int,
                  pending: Dict[int, Tuple[float, int, Dict[str, Any]]]) -> None:
    while True:
        try:
            data, addr = raw.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        now = time.monotonic()
        fields = parse_reply(data, ipv6)
        if fields is None:
            continue
        src, sport, our_port, ack, flags = fields
        if ipv6:
            src = addr[0]
        if src != dst or sport != dport or our_port not in pending:
            continue
        t0, isn, a = pending[our_port]
        if ack != (isn + 1) & 0xFFFFFFFF:
            continue
        if flags & TCP_RST:
            a["status"], a["reply"] = "refused", "rst"
        elif flags & (TCP_SYN | TCP_ACK) == (TCP_SYN | TCP_ACK):
            a["status"], a["reply"] = "open", "syn-ack"
        else:
            continue
        a["rtt_ms"] = round((now - t0) * 1000.0, 3)
        del pending[our_port]


def check_args(port: int, mode: str = "connect", count: int = 10, interval: float = 0.2, timeout: float = 1.0) -> None:
    """Raise ProbeError for a value no probe should run with."""
    if mode not in MODES:
        raise ProbeError("mode must be one of %s, got %r" % (", ".join(MODES), mode))
    if not 1 <= port <= 65535:
        raise ProbeError("port must be 1-65535, got %d" % port)
    if not 1 <= count <= 10000:
        raise ProbeError("count must be 1-10000, got %d" % count)
    if not 0 <= interval <= 60:
        raise ProbeError("interval must be 0-60 seconds, got %s" % interval)
    if not 0.01 <= timeout <= 60:
        raise ProbeError("timeout must be 0.01-60 seconds, got %s" % timeout)


def run(host: str, port: int, mode: str = DEFAULTS["mode"], count: int = DEFAULTS["count"],
        interval: float = DEFAULTS["interval"], timeout: float = DEFAULTS["timeout"],
        family: str = DEFAULTS["family"]) -> Dict[str, Any]:
    """Probe ``host``:``port``; returns the summary (see summarize) plus the attempts and what was probed."""
    check_args(port, mode, count, interval, timeout)
    fam, sockaddr = resolve(host, port, family)
    started = time.monotonic()
    attempts = (probe_syn if mode == "syn" else probe_connect)(fam, sockaddr, count, interval, timeout)
    out = summarize(attempts)
    out.update({"host": host, "address": sockaddr[0], "port": port, "mode": mode,
                "family": "ipv6" if fam == socket.AF_INET6 else "ipv4",
                "duration": round(time.monotonic() - started, 3), "attempts": attempts})
    return out


__all__ = ["DEFAULTS", "FAMILIES", "MODES", "ProbeError", "check_args", "run", "summarize", "percentile", "syn_segment", "parse_reply", "resolve"]
