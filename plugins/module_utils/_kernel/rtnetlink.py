# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Links and qdiscs of the current network namespace, and its nf_tables tables, over netlink.

Each is one dump on a plain AF_NETLINK socket, its messages decoded here from their raw bytes - the same
whatever Python libraries the target has. (pyroute2 did the dumps before; importing it loads every one of its
submodules, about 0.1-0.2 s of CPU per module run, more than all the reading costs; and its own netem decoder
stops at TCA_NETEM_RATE and differs between versions.)

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import array
import fcntl
import os
import socket
import struct
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.tc import decode_netem_options

NLMSG_HDRLEN = 16
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCMSG_LEN = 20
TCA_KIND, TCA_OPTIONS, TCA_STATS, TCA_STATS2 = 1, 2, 3, 7
TCA_STATS_BASIC, TCA_STATS_QUEUE, TCA_STATS_PKT64 = 1, 3, 8
TC_H_ROOT, TC_H_INGRESS = 0xFFFFFFFF, 0xFFFFFFF1
NLA_F_MASK = 0x3FFF


def _attrs(buf: bytes, start: int, end: int) -> Iterator[Tuple[int, bytes]]:
    """Walk netlink attributes (struct nlattr, 4-byte aligned) in buf[start:end]."""
    pos = start
    while pos + 4 <= end:
        length, kind = struct.unpack_from("=HH", buf, pos)
        if length < 4 or pos + length > end:
            break
        yield kind & NLA_F_MASK, buf[pos + 4:pos + length]
        pos += (length + 3) & ~3


def format_handle(value: int) -> str:
    if value == TC_H_ROOT:
        return "root"
    if value == TC_H_INGRESS:
        return "ingress"
    return "%x:%s" % (value >> 16, "%x" % (value & 0xFFFF) if value & 0xFFFF else "")


def _stats(stats2: Optional[bytes], legacy: Optional[bytes]) -> Dict[str, int]:
    out = {"bytes": 0, "packets": 0, "drops": 0, "overlimits": 0, "requeues": 0, "backlog_bytes": 0, "qlen": 0}
    if legacy is not None and len(legacy) >= 36:
        (out["bytes"], out["packets"], out["drops"], out["overlimits"], _bps, _pps,
         out["qlen"], out["backlog_bytes"]) = struct.unpack_from("=QIIIIIII", legacy)
    if stats2 is not None:
        for kind, payload in _attrs(stats2, 0, len(stats2)):
            if kind == TCA_STATS_BASIC and len(payload) >= 12:
                out["bytes"], out["packets"] = struct.unpack_from("=QI", payload)
            elif kind == TCA_STATS_PKT64 and len(payload) >= 8:
                out["packets"] = struct.unpack_from("=Q", payload)[0]
            elif kind == TCA_STATS_QUEUE and len(payload) >= 20:
                out["qlen"], out["backlog_bytes"], out["drops"], out["requeues"], out["overlimits"] = \
                    struct.unpack_from("=IIIII", payload)
    return out


def _ratespec_bps(payload: bytes, offset: int) -> int:
    # struct tc_ratespec { u8 cell_log, linklayer; u16 overhead; s16 cell_align; u16 mpu; u32 rate; }
    return struct.unpack_from("=I", payload, offset + 8)[0] * 8


def decode_options(kind: str, raw: Optional[bytes]) -> Dict[str, Any]:
    """Options of the qdisc kinds whose settings explain drops; others are reported by size only."""
    if raw is None:
        return {}
    if kind == "netem":
        return decode_netem_options(raw)
    if kind in ("pfifo", "bfifo", "pfifo_head_drop") and len(raw) >= 4:
        return {"limit": struct.unpack_from("=I", raw)[0]}
    if kind == "tbf":
        out: Dict[str, Any] = {}
        for akind, payload in _attrs(raw, 0, len(raw)):
            if akind == 1 and len(payload) >= 36:  # TCA_TBF_PARMS: tc_tbf_qopt
                out["rate_bps"] = _ratespec_bps(payload, 0)
                out["limit"], out["buffer"], out["mtu"] = struct.unpack_from("=III", payload, 24)
            elif akind == 4 and len(payload) >= 8:  # TCA_TBF_RATE64 (bytes/s)
                out["rate_bps"] = struct.unpack_from("=Q", payload)[0] * 8
            elif akind == 6 and len(payload) >= 4:  # TCA_TBF_BURST
                out["burst"] = struct.unpack_from("=I", payload)[0]
        return out
    return {"raw_length": len(raw)}


def _header(buf: bytes, fmt: str, what: str) -> Tuple[Any, ...]:
    """The family header after the nlmsghdr; a message too short to hold it is a ParseError."""
    if len(buf) < NLMSG_HDRLEN + struct.calcsize(fmt):
        raise ParseError("netlink %s message" % what, None, "%d bytes, shorter than its header" % len(buf))
    return struct.unpack_from(fmt, buf, NLMSG_HDRLEN)


def _decode_qdisc(buf: bytes, names: Dict[int, str]) -> Dict[str, Any]:
    _family, ifindex, handle, parent, _info = _header(buf, "=B3xiIII", "qdisc")
    kind, options, stats2, legacy = "", None, None, None
    for akind, payload in _attrs(buf, NLMSG_HDRLEN + TCMSG_LEN, len(buf)):
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
    return {
        "interface": names.get(ifindex, str(ifindex)),
        "ifindex": ifindex,
        "kind": kind,
        "handle": format_handle(handle),
        "parent": format_handle(parent),
        "root": parent == TC_H_ROOT,
        "options": decoded,
        "stats": _stats(stats2, legacy),
    }


# struct rtnl_link_stats64 / rtnl_link_stats, as far as every kernel since 2.6 has them (what pyroute2 names too)
LINK_STATS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped",
              "multicast", "collisions", "rx_length_errors", "rx_over_errors", "rx_crc_errors", "rx_frame_errors",
              "rx_fifo_errors", "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
              "tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed")
IFINFOMSG_LEN = 16
IFLA_IFNAME, IFLA_MTU, IFLA_QDISC, IFLA_STATS, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_STATS64 = 3, 4, 6, 7, 16, 18, 23
IFLA_INFO_KIND = 1
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
NETLINK_ROUTE = 0
RTM_GETLINK, RTM_GETQDISC = 18, 38


def _string(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode("utf-8", "replace")


def _link_stats(payload: bytes, width: int) -> Dict[str, int]:
    fmt = "=Q" if width == 8 else "=I"
    count = min(len(LINK_STATS), len(payload) // width)
    return dict((LINK_STATS[i], struct.unpack_from(fmt, payload, i * width)[0]) for i in range(count))


def decode_link(buf: bytes) -> Tuple[str, Dict[str, Any]]:
    """(name, row) of one RTM_NEWLINK message (struct ifinfomsg and its attributes)."""
    _family, _type, ifindex, _flags, _change = _header(buf, "=BxHiII", "link")
    name = ""
    row: Dict[str, Any] = {"ifindex": ifindex, "operstate": None, "mtu": None, "qdisc": None, "kind": None, "stats": {}}
    stats32: Optional[bytes] = None
    for kind, payload in _attrs(buf, NLMSG_HDRLEN + IFINFOMSG_LEN, len(buf)):
        if kind == IFLA_IFNAME:
            name = _string(payload)
        elif kind == IFLA_MTU and len(payload) >= 4:
            row["mtu"] = struct.unpack_from("=I", payload)[0]
        elif kind == IFLA_QDISC:
            row["qdisc"] = _string(payload)
        elif kind == IFLA_OPERSTATE and payload:
            row["operstate"] = OPERSTATES[payload[0]] if payload[0] < len(OPERSTATES) else str(payload[0])
        elif kind == IFLA_LINKINFO:
            for ikind, ipayload in _attrs(payload, 0, len(payload)):
                if ikind == IFLA_INFO_KIND:
                    row["kind"] = _string(ipayload)
        elif kind == IFLA_STATS64:
            row["stats"] = _link_stats(payload, 8)
        elif kind == IFLA_STATS:
            stats32 = payload
    if not row["stats"] and stats32 is not None:
        row["stats"] = _link_stats(stats32, 4)
    return name, row


def split_messages(data: bytes) -> Tuple[List[bytes], bool]:
    """The messages of one datagram of a dump, and whether the dump ended in it (NLMSG_DONE, or an ack).

    Raises OSError for an error the kernel answers with (NLMSG_ERROR with a non-zero errno).
    """
    out: List[bytes] = []
    pos = 0
    while pos + NLMSG_HDRLEN <= len(data):
        length, kind = struct.unpack_from("=IH", data, pos)
        if length < NLMSG_HDRLEN or pos + length > len(data) or kind == NLMSG_DONE:
            return out, True
        if kind == NLMSG_ERROR:
            err = -struct.unpack_from("=i", data, pos + NLMSG_HDRLEN)[0] if length >= NLMSG_HDRLEN + 4 else 0
            if err:
                raise OSError(err, os.strerror(err))
            return out, True
        out.append(data[pos:pos + length])
        pos += (length + 3) & ~3
    return out, False


def dump(protocol: int, msg_type: int, header: bytes) -> Iterator[bytes]:
    """Every message of one netlink dump request (``header``: the family's header after the nlmsghdr).

    Raises OSError for a socket error or an error the kernel answers with.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
    try:
        sock.settimeout(5)
        sock.send(struct.pack("=IHHII", NLMSG_HDRLEN + len(header), msg_type, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + header)
        done = False
        while not done:
            messages, done = split_messages(sock.recv(1 << 20))
            yield from messages
    finally:
        sock.close()


class Netlink:
    """The links and qdiscs of the current namespace: one rtnetlink dump each, the links read once."""

    def __init__(self) -> None:
        self._links: Optional[Dict[str, Dict[str, Any]]] = None

    def close(self) -> None:
        """Nothing stays open between dumps; kept so that it can be used as a context manager."""

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def links(self) -> Dict[str, Dict[str, Any]]:
        if self._links is None:
            # ifinfomsg: family AF_UNSPEC, type, index, flags, change
            header = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
            self._links = dict(decode_link(m) for m in dump(NETLINK_ROUTE, RTM_GETLINK, header))
        return self._links

    def names(self) -> Dict[int, str]:
        return dict((row["ifindex"], name) for name, row in self.links().items())

    def qdiscs(self, interfaces: Optional[List[str]] = None) -> List[Dict[str, Any]]:
        names = self.names()
        if interfaces:
            unknown = sorted(set(interfaces) - set(names.values()))
            if unknown:
                raise LookupError("unknown interface(s): %s (present: %s)" % (", ".join(unknown), ", ".join(sorted(names.values()))))
        # tcmsg: family AF_UNSPEC, ifindex 0 (every interface), handle, parent, info
        header = struct.pack("=B3xiIII", 0, 0, 0, 0, 0)
        rows = [_decode_qdisc(m, names) for m in dump(NETLINK_ROUTE, RTM_GETQDISC, header)]
        if interfaces:
            rows = [r for r in rows if r["interface"] in interfaces]
        return rows


# ---- ethtool driver statistics (ioctl SIOCETHTOOL), as `ethtool -S` prints them ----
SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS, ETHTOOL_GSTATS, ETHTOOL_GSSET_INFO = 0x1B, 0x1D, 0x37
ETH_SS_STATS = 1
ETH_GSTRING_LEN = 32


def _ethtool(sock: socket.socket, ifname: str, payload: "array.array[int]") -> None:
    addr = payload.buffer_info()[0]
    ifreq = struct.pack("16sP", ifname.encode()[:15], addr)
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)


def driver_stats(ifname: str) -> Optional[Dict[str, int]]:
    """Driver counters of one interface, or None when its driver has none."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        info = array.array("B", struct.pack("=IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_STATS, 0))
        try:
            _ethtool(sock, ifname, info)
        except OSError:
            return None
        count = struct.unpack_from("=IIQI", info.tobytes())[3]
        if count == 0:
            return None
        strings = array.array("B", struct.pack("=III", ETHTOOL_GSTRINGS, ETH_SS_STATS, count) + b"\0" * (count * ETH_GSTRING_LEN))
        _ethtool(sock, ifname, strings)
        values = array.array("B", struct.pack("=II", ETHTOOL_GSTATS, count) + b"\0" * (count * 8))
        _ethtool(sock, ifname, values)
        raw_names, raw_values = strings.tobytes()[12:], values.tobytes()[8:]
        out = {}
        for i in range(count):
            name = raw_names[i * ETH_GSTRING_LEN:(i + 1) * ETH_GSTRING_LEN].split(b"\0", 1)[0].decode("ascii", "replace")
            out[name] = struct.unpack_from("=Q", raw_values, i * 8)[0]
        return out
    except OSError:
        return None
    finally:
        sock.close()


# ---- nf_tables tables (NFT_MSG_GETTABLE dump), to learn which tables exist without `nft list` ----
NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETTABLE = 1
NFTA_TABLE_NAME = 1
NFT_FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}


def nft_tables() -> Optional[List[Tuple[str, str]]]:
    """(family, name) of every nf_tables table in this namespace, or None without nf_tables.

    One netlink dump, a millisecond; `nft list tables` fetches the whole ruleset first.
    """
    out: List[Tuple[str, str]] = []
    try:
        # nfgenmsg: family AF_UNSPEC, version 0, res_id 0
        for msg in dump(NETLINK_NETFILTER, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, struct.pack("=BBH", 0, 0, 0)):
            family = struct.unpack_from("=B", msg, NLMSG_HDRLEN)[0]
            for akind, payload in _attrs(msg, NLMSG_HDRLEN + 4, len(msg)):
                if akind == NFTA_TABLE_NAME:
                    out.append((NFT_FAMILIES.get(family, str(family)), _string(payload)))
    except OSError:
        return None
    return out
