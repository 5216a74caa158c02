# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink, the one owner of its wire format: the attribute walk and pack, the dump and request loops (with the
kernel's extended-ack messages), tc handles formatted and parsed; and the links of the current network namespace,
its nf_tables tables, and driver statistics over the ethtool ioctl.

Each read is one dump on a plain AF_NETLINK socket, its messages decoded from their raw bytes - the same
whatever Python libraries the target has. (pyroute2 did the dumps before; importing it loads every one of its
submodules, about 0.1-0.2 s of CPU per module run, more than all the reading costs; and its own netem decoder
stops at TCA_NETEM_RATE and differs between versions.) Qdisc messages are _kernel.tc's, netem options
_kernel.netem's, both built on this module.

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

NLMSG_HDRLEN = 16
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # flags of an NLMSG_ERROR answer
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
NLMSGERR_ATTR_MSG = 1
TC_H_ROOT, TC_H_INGRESS = 0xFFFFFFFF, 0xFFFFFFF1
REQUEST_TIMEOUT = 10


# ---- attributes (struct nlattr): the one walk and the one pack ----------------------------------------------

def attributes(buf: bytes, start: int, end: int, source: Optional[str] = None,
               order: str = "=") -> List[Tuple[int, int, int]]:
    """The netlink attributes in buf[start:end] (u16 nla_len, u16 nla_type, payload, padding to 4 bytes) as
    (type without its flags, payload start, payload end); offsets count from buf[0].

    With ``source`` a truncated or overlong attribute is a ParseError naming it; without, the walk stops there
    (what the kernel sends is trusted to be whole, a short tail is ignored).
    """
    attrs, off = [], start
    while off < end:
        if end - off < 4:
            if source is not None:
                raise ParseError(source, None, "truncated attribute header at byte %d" % off)
            break
        length, kind = struct.unpack_from(order + "HH", buf, off)
        if length < 4 or off + length > end:
            if source is not None:
                raise ParseError(source, None, "attribute %d at byte %d claims %d bytes, %d left"
                                 % (kind & NLA_TYPE_MASK, off, length, end - off))
            break
        attrs.append((kind & NLA_TYPE_MASK, off + 4, off + length))
        off += (length + 3) & ~3
    return attrs


def _attrs(buf: bytes, start: int, end: int) -> Iterator[Tuple[int, bytes]]:
    """(type, payload) of the attributes in buf[start:end] (see attributes)."""
    for kind, begin, stop in attributes(buf, start, end):
        yield kind, buf[begin:stop]


def nla(kind: int, payload: bytes) -> bytes:
    """One attribute: header, payload, padding to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _string(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode("utf-8", "replace")


# ---- tc handles: format and parse ---------------------------------------------------------------------------

def format_handle(value: int) -> str:
    """The kernel's u32 handle as tc prints it ("root", "ingress", "8001:", "1:10")."""
    if value == TC_H_ROOT:
        return "root"
    if value == TC_H_INGRESS:
        return "ingress"
    return "%x:%s" % (value >> 16, "%x" % (value & 0xFFFF) if value & 0xFFFF else "")


def parse_handle(text: Optional[str]) -> int:
    """A handle as format_handle writes it (or tc prints it) -> the kernel's u32; None and "" are the root."""
    if text in (None, "", "root"):
        return TC_H_ROOT
    if text == "ingress":
        return TC_H_INGRESS
    major, _sep, minor = str(text).partition(":")
    return (int(major or "0", 16) << 16) | int(minor or "0", 16)


def header(buf: bytes, fmt: str, what: str) -> Tuple[Any, ...]:
    """The family header after the nlmsghdr; a message too short to hold it is a ParseError."""
    if len(buf) < NLMSG_HDRLEN + struct.calcsize(fmt):
        raise ParseError("netlink %s message" % what, None, "%d bytes, shorter than its header" % len(buf))
    return struct.unpack_from(fmt, buf, NLMSG_HDRLEN)


# ---- messages: the dump loop and the request loop --------------------------------------------------------------

class NetlinkError(OSError):
    """An error the kernel answered a request with: errno and, where the kernel gives one, its own message."""

    def __init__(self, code: int, kernel_msg: str = "") -> None:
        super(NetlinkError, self).__init__(code, kernel_msg or os.strerror(code))
        self.kernel_msg = kernel_msg


def ext_ack(data: bytes, pos: int, length: int, flags: int) -> str:
    """The kernel's message (NLMSGERR_ATTR_MSG) of the NLMSG_ERROR at data[pos:pos + length], or ""."""
    if not flags & NLM_F_ACK_TLVS:
        return ""
    echoed = struct.unpack_from("=I", data, pos + 20)[0] if pos + 24 <= len(data) else NLMSG_HDRLEN
    off = pos + NLMSG_HDRLEN + 4 + (NLMSG_HDRLEN if flags & NLM_F_CAPPED else echoed)
    for kind, begin, stop in attributes(data, off, min(pos + length, len(data))):
        if kind == NLMSGERR_ATTR_MSG:
            return _string(data[begin:stop]).strip()
    return ""


def split_messages(data: bytes, seq: Optional[int] = None) -> Tuple[List[bytes], bool]:
    """The messages of one datagram, and whether the exchange ended in it (NLMSG_DONE, or an ack).

    Raises NetlinkError (an OSError) for an error the kernel answers with (NLMSG_ERROR with a non-zero errno), with
    the kernel's extended-ack message when it gave one. With ``seq``, only the answer to that request ends it.
    """
    out: List[bytes] = []
    pos = 0
    while pos + NLMSG_HDRLEN <= len(data):
        length, kind, flags, mseq = struct.unpack_from("=IHHI", data, pos)
        if length < NLMSG_HDRLEN or pos + length > len(data) or kind == NLMSG_DONE:
            return out, True
        if kind == NLMSG_ERROR and (seq is None or mseq == seq):
            err = -struct.unpack_from("=i", data, pos + NLMSG_HDRLEN)[0] if length >= NLMSG_HDRLEN + 4 else 0
            if err:
                raise NetlinkError(err, ext_ack(data, pos, length, flags))
            return out, True
        out.append(data[pos:pos + length])
        pos += (length + 3) & ~3
    return out, False


def _exchange(protocol: int, msg_type: int, flags: int, body: bytes, timeout: float) -> Iterator[bytes]:
    """Send one request (sequence 1) and yield the messages of its answer until it ends (see split_messages)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
    try:
        for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
            try:
                sock.setsockopt(SOL_NETLINK, option, 1)
            except OSError:
                pass  # kernels before 4.12 have no extended ack: errno only
        sock.settimeout(timeout)
        sock.send(struct.pack("=IHHII", NLMSG_HDRLEN + len(body), msg_type, flags | NLM_F_REQUEST, 1, 0) + body)
        done = False
        while not done:
            messages, done = split_messages(sock.recv(1 << 20), seq=1)
            yield from messages
    finally:
        sock.close()


def dump(protocol: int, msg_type: int, header_bytes: bytes) -> Iterator[bytes]:
    """Every message of one netlink dump request (``header_bytes``: the family's header after the nlmsghdr).

    Raises OSError for a socket error or an error the kernel answers with (NetlinkError).
    """
    yield from _exchange(protocol, msg_type, NLM_F_DUMP, header_bytes, 5)


def request(protocol: int, msg_type: int, flags: int, body: bytes, timeout: float = REQUEST_TIMEOUT) -> None:
    """One request that changes something, answered by an ack: returns when the kernel accepted it.

    Raises NetlinkError with the kernel's errno and extended-ack message when it refused, socket.timeout when it
    did not answer within ``timeout`` seconds, OSError for a socket error.
    """
    for _message in _exchange(protocol, msg_type, flags | NLM_F_ACK, body, timeout):
        pass


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
RTM_GETLINK = 18


def _link_stats(payload: bytes, width: int) -> Dict[str, int]:
    fmt = "=Q" if width == 8 else "=I"
    count = min(len(LINK_STATS), len(payload) // width)
    return dict((LINK_STATS[i], struct.unpack_from(fmt, payload, i * width)[0]) for i in range(count))


def decode_link(buf: bytes) -> Tuple[str, Dict[str, Any]]:
    """(name, row) of one RTM_NEWLINK message (struct ifinfomsg and its attributes)."""
    _family, _type, ifindex, _flags, _change = header(buf, "=BxHiII", "link")
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


class Netlink:
    """The links of the current namespace: one rtnetlink dump, read once (qdiscs: _kernel.tc.read_qdiscs)."""

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
            body = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
            self._links = dict(decode_link(m) for m in dump(NETLINK_ROUTE, RTM_GETLINK, body))
        return self._links

    def names(self) -> Dict[int, str]:
        return dict((row["ifindex"], name) for name, row in self.links().items())


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
            family = header(msg, "=B", "nf_tables table")[0]
            for akind, payload in _attrs(msg, NLMSG_HDRLEN + 4, len(msg)):
                if akind == NFTA_TABLE_NAME:
                    out.append((NFT_FAMILIES.get(family, str(family)), _string(payload)))
    except OSError:
        return None
    return out
