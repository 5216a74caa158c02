"""Traffic and stuck applications for the drills of netdiag.packetloss (roles/inject/vars/drills.yml).

Standard library only (Python >= 3.9), run inside the drill's network namespace. Every generator stops by itself
after --for seconds (default 120), so nothing outlives a killed test; a sink lives SINK_GRACE seconds longer, so a
sender started after it never outlives it. ``--daemon --pidfile P`` detaches it (the inject role's stuck applications
and traffic) and returns once it is ready (bound, listening, sending), so commands started in order are up in order;
``stop --pidfile P`` ends such a one and ``alive --pidfile P`` exits 0 while it runs. Traffic goes only to the
addresses it is given (namespaces the drill created, or loopback).
"""
from __future__ import annotations

import argparse
import errno
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

MARK = "netdiag_drill"
SINK_GRACE = 10.0
# the pidfile a daemon writes once it is ready (--daemon --pidfile)
_READY_PIDFILE: List[str] = []


def _addr(text: str) -> Tuple[str, int]:
    host, _sep, port = text.rpartition(":")
    return host, int(port)


def _until(seconds: float) -> Callable[[], bool]:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end


# ------------------------------------------------------------------------------------------------ packets


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(src: str, dst: str, proto: int, payload: bytes, ident: int = 0, flags_frag: int = 0, ihl: int = 5,
        tot_len: Optional[int] = None, bad_csum: bool = False) -> bytes:
    length = tot_len if tot_len is not None else 20 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, length, ident, flags_frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    c = _csum(hdr)
    if bad_csum:
        c ^= 0x5A5A
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, length)


def udp4(src: str, dst: str, sport: int, dport: int, data: bytes, bad_csum: bool = False) -> bytes:
    hdr = struct.pack("!HHHH", sport, dport, 8 + len(data), 0)
    c = _csum(_pseudo(src, dst, 17, 8 + len(data)) + hdr + data) or 0xFFFF
    if bad_csum:
        c ^= 0x5A5A
    return hdr[:6] + struct.pack("!H", c) + data


def tcp4(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"",
         bad_csum: bool = False) -> bytes:
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    c = _csum(_pseudo(src, dst, 6, len(hdr) + len(data)) + hdr + data)
    if bad_csum:
        c ^= 0x5A5A
    return hdr[:16] + struct.pack("!H", c) + hdr[18:] + data


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def frames(kind: str, src: str, dst: str, n: int) -> List[bytes]:
    """IPv4 packets of one broken kind (cause 11, 12, 19, 34 of the catalog)."""
    out = []
    for i in range(n):
        if kind == "ip_csum":
            out.append(ip4(src, dst, 17, udp4(src, dst, 40000, 9, b"x" * 32), ident=i, bad_csum=True))
        elif kind == "ihl":
            out.append(ip4(src, dst, 17, udp4(src, dst, 40000, 9, b"x" * 32), ident=i, ihl=4))
        elif kind == "truncated":
            out.append(ip4(src, dst, 17, udp4(src, dst, 40000, 9, b"x" * 21), ident=i, tot_len=400))
        elif kind == "martian":
            out.append(ip4("127.0.0.1", dst, 17, udp4("127.0.0.1", dst, 40000, 9, b"x" * 32), ident=i))
        elif kind == "udp_csum":
            out.append(ip4(src, dst, 17, udp4(src, dst, 40000, 9, b"x" * 32, bad_csum=True), ident=i))
        elif kind == "tcp_csum":
            out.append(ip4(src, dst, 6, tcp4(src, dst, 40000, 9, random.getrandbits(32), 0, 0x02, bad_csum=True), ident=i))
        else:
            raise SystemExit("unknown kind %s" % kind)
    return out


# ------------------------------------------------------------------------------------------------ generators


def udp_sink(a: argparse.Namespace) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # past net.core.rmem_max as root (SO_RCVBUFFORCE): a fast sender's datagrams are not lost at the sink
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(_addr(a.bind))
    s.settimeout(0.5)
    ready()
    going = _until(a.seconds + SINK_GRACE)
    while going():
        try:
            s.recv(65535)
        except socket.timeout:
            pass


def _spread(target: Tuple[str, int], n: int) -> List[Tuple[str, int]]:
    """``n`` addresses from ``target``'s on: target, target + 1, ... (the port kept)."""
    first = struct.unpack("!I", socket.inet_aton(target[0]))[0]
    return [(socket.inet_ntoa(struct.pack("!I", first + i)), target[1]) for i in range(n)]


def udp_send(a: argparse.Namespace) -> None:
    """``--rate`` datagrams a second in bursts of ``--burst``; send errors (no route, a full buffer) are counted by the
    kernel and ignored here. ``--spread N`` sends to N consecutive addresses from each ``--to`` on (one neighbour
    entry each); ``--gso N`` sends N datagrams of ``--size`` in one send (UDP_SEGMENT: the kernel cuts them, in one go
    where the device takes no more than one segment at a time: ip link set dev X gso_max_segs 1)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if a.gso > 1:
        s.setsockopt(socket.IPPROTO_UDP, 103, a.size)  # UDP_SEGMENT
    if a.src:
        s.bind((a.src, 0))
    if a.df:
        s.setsockopt(socket.IPPROTO_IP, 10, 3)  # IP_MTU_DISCOVER = IP_PMTUDISC_PROBE: DF set, path MTU ignored
    if a.sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, a.sndbuf)
        s.setblocking(False)
    targets = [x for t in a.to for x in _spread(_addr(t), a.spread)]
    if a.flows:  # a new source port (a new conntrack entry) for every datagram
        s.close()
    data = b"x" * (a.size * max(1, a.gso))
    ready()
    going, pause = _until(a.seconds), a.burst / float(a.rate)
    while going():
        for _n in range(a.burst):
            for t in targets:
                try:
                    if a.flows:
                        f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        f.sendto(data, t)
                        f.close()
                    else:
                        s.sendto(data, t)
                except OSError:
                    pass
        time.sleep(pause)


def udp_stuck(a: argparse.Namespace) -> None:
    """An application that stopped reading: the smallest receive buffer, never read."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    s.bind(_addr(a.bind))
    ready()
    _sleep(a.seconds)


def tcp_stuck(a: argparse.Namespace) -> None:
    """An application that stopped accepting: a listen backlog of --backlog, never accepted."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(_addr(a.bind))
    s.listen(a.backlog)
    ready()
    _sleep(a.seconds)


def tcp_connect(a: argparse.Namespace) -> None:
    """--rate new connections a second (non-blocking), each closed after a while."""
    target = _addr(a.to)
    clients: List[socket.socket] = []
    ready()
    going = _until(a.seconds)
    while going():
        for _n in range(max(1, a.rate // 20)):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(target)
            clients.append(c)
        while len(clients) > a.keep:
            clients.pop(0).close()
        time.sleep(0.05)


def tcp_sink(a: argparse.Namespace) -> None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(_addr(a.bind))
    s.listen(64)
    ready()

    def serve(c: socket.socket) -> None:
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        c.close()
    s.settimeout(0.5)
    going = _until(a.seconds + SINK_GRACE)
    while going():
        try:
            c = s.accept()[0]
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def raw_frames(a: argparse.Namespace) -> None:
    """Broken IPv4 packets as Ethernet frames on --iface to --dst-mac (AF_PACKET: no kernel check on the way out)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    src_mac = s.getsockname()[4]
    head = _mac(a.dst_mac) + src_mac + b"\x08\x00"
    batch = [head + p for p in frames(a.kind, a.src, a.dst, 64)]
    ready()
    going, i = _until(a.seconds), 0
    while going():
        for _n in range(a.burst):
            s.send(batch[i % len(batch)])
            i += 1
        time.sleep(a.burst / float(a.rate))


def first_fragments(a: argparse.Namespace) -> None:
    """The first fragment (MF set, offset 0) of UDP datagrams whose rest never comes: reassembly times out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    # the fragments' source port has a socket: the receiver's ICMP time-exceeded finds it (else Icmp InErrors here)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((a.src, 40000))
    ready()
    going, ident = _until(a.seconds), random.randrange(1, 60000)
    payload = udp4(a.src, a.dst, 40000, 9, b"x" * 1000)[:512]
    while going():
        ident = ident % 65535 + 1
        s.sendto(ip4(a.src, a.dst, 17, payload, ident=ident, flags_frag=0x2000), (a.dst, 0))
        time.sleep(1.0 / a.rate)


def tcp_out_of_window(a: argparse.Namespace) -> None:
    """A real connection to --to, and segments on its 4-tuple with random sequence numbers: out of the receiver's
    window, dropped by TCP's sequence check (BeyondWindow, TCP_INVALID_SEQUENCE on 6.18)."""
    host, port = _addr(a.to)
    c = socket.create_connection((host, port), timeout=10)
    src, sport = c.getsockname()[:2]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # sends only: receives no copies
    ready()
    going = _until(a.seconds)
    while going():
        for _n in range(a.burst):
            seg = tcp4(src, host, sport, port, random.getrandbits(32), 0, 0x18, b"z" * 16)
            raw.sendto(ip4(src, host, 6, seg, ident=random.getrandbits(16)), (host, 0))
        c.send(b"ok")
        time.sleep(a.burst / float(a.rate))


def xdp_drop(a: argparse.Namespace) -> None:
    """Attach an XDP program that drops every frame (r0 = XDP_DROP; exit) to --iface in generic (skb) mode: loaded
    with bpf(2) and attached over rtnetlink, no loader or compiler needed. It stays attached when this process ends;
    `ip link set dev IFACE xdpgeneric off` takes it away."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    insns = struct.pack("<BBhi", 0xB7, 0, 0, 1) + struct.pack("<BBhi", 0x95, 0, 0, 0)  # mov64 r0, 1; exit
    prog, lic = ctypes.create_string_buffer(insns, len(insns)), ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(struct.pack("<IIQQIIQII16s", 6, 2, ctypes.addressof(prog), ctypes.addressof(lic),
                                                   0, 0, 0, 0, 0, b"netdiag_drill"), 128)
    fd = libc.syscall(321, 5, attr, 128)  # bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_XDP)
    if fd < 0:
        raise SystemExit("bpf(BPF_PROG_LOAD): %s" % os.strerror(ctypes.get_errno()))
    index = socket.if_nametoindex(a.iface)
    xdp = struct.pack("<HHi", 8, 1, fd) + struct.pack("<HHI", 8, 3, 2)  # IFLA_XDP_FD, IFLA_XDP_FLAGS = SKB_MODE
    attrs = struct.pack("<HH", 4 + len(xdp), 43 | 0x8000) + xdp  # IFLA_XDP, nested
    body = struct.pack("<BxHiII", 0, 0, index, 0, 0) + attrs
    msg = struct.pack("<IHHII", 16 + len(body), 19, 0x5, 1, 0) + body  # RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    nl.bind((0, 0))
    nl.send(msg)
    reply = nl.recv(65536)
    err = struct.unpack_from("<i", reply, 16)[0] if struct.unpack_from("<H", reply, 4)[0] == 2 else 0
    if err:
        raise SystemExit("attaching XDP to %s: %s" % (a.iface, os.strerror(-err)))
    ready()


# ------------------------------------------------------------------------------------------------ plumbing


def ready() -> None:
    """Say ready: on stdout, and for a daemon by writing its pidfile (what its starter waits for)."""
    print("ready", flush=True)
    for pidfile in _READY_PIDFILE:
        tmp = "%s.%d" % (pidfile, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, pidfile)


def _sleep(seconds: float) -> None:
    going = _until(seconds)
    while going():
        time.sleep(0.5)


def _daemon(pidfile: str) -> None:
    """Detach (double fork, new session, no terminal, stdio on /dev/null); the daemon writes the pidfile once it is
    ready (ready()), and the caller returns then (at most 60 s: a slow emulated VM takes seconds to start Python)."""
    try:
        os.unlink(pidfile)
    except OSError:
        pass
    if os.fork():
        for _n in range(1200):
            if _ours(pidfile):
                os._exit(0)
            time.sleep(0.05)
        sys.stderr.write("the daemon did not start\n")
        os._exit(1)
    os.setsid()
    if os.fork():
        os._exit(0)
    fd = os.open(os.devnull, os.O_RDWR)
    for n in (0, 1, 2):
        os.dup2(fd, n)
    _READY_PIDFILE.append(pidfile)


def _ours(pidfile: str) -> Optional[int]:
    """The pid in the pidfile when it is a running process of this script, else None."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
    except (OSError, ValueError, IndexError):
        return None
    return pid if MARK.encode() in cmdline else None


def alive(a: argparse.Namespace) -> None:
    sys.exit(0 if _ours(a.pidfile) else 1)


def stop(a: argparse.Namespace) -> None:
    pid = _ours(a.pidfile)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _n in range(50):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.1)
    try:
        os.unlink(a.pidfile)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise


COMMANDS: Dict[str, Callable[[argparse.Namespace], None]] = {
    "udp-sink": udp_sink, "udp-send": udp_send, "udp-stuck": udp_stuck, "tcp-stuck": tcp_stuck,
    "tcp-connect": tcp_connect, "tcp-sink": tcp_sink, "raw-frames": raw_frames, "first-fragments": first_fragments,
    "tcp-out-of-window": tcp_out_of_window, "xdp-drop": xdp_drop, "alive": alive, "stop": stop,
}


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("command", choices=sorted(COMMANDS))
    p.add_argument("--for", dest="seconds", type=float, default=120.0, help="stop after this many seconds")
    p.add_argument("--daemon", action="store_true")
    p.add_argument("--pidfile")
    p.add_argument("--bind", default="127.0.0.1:5300")
    p.add_argument("--to", action="append", default=[])
    p.add_argument("--src")
    p.add_argument("--dst")
    p.add_argument("--rate", type=int, default=400, help="packets (or connections) a second")
    p.add_argument("--burst", type=int, default=20)
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--df", action="store_true")
    p.add_argument("--sndbuf", type=int, default=0)
    p.add_argument("--flows", action="store_true")
    p.add_argument("--spread", type=int, default=1, help="udp-send: this many consecutive addresses from --to on")
    p.add_argument("--gso", type=int, default=1, help="udp-send: datagrams of --size per send (UDP_SEGMENT, at most 64)")
    p.add_argument("--backlog", type=int, default=1)
    p.add_argument("--keep", type=int, default=200)
    p.add_argument("--iface")
    p.add_argument("--dst-mac")
    p.add_argument("--kind")
    a = p.parse_args(argv)
    if a.command in ("tcp-connect", "tcp-out-of-window") and a.to:
        a.to = a.to[0]
    if a.daemon:
        if not a.pidfile:
            p.error("--daemon needs --pidfile")
        if _ours(a.pidfile):
            return
        _daemon(a.pidfile)
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(0))
    COMMANDS[a.command](a)


if __name__ == "__main__":
    main()
