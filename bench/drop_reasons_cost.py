# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the drop_reasons layer costs (issue 12, item 5), against baselines measured in the same run. As root.

  flood   The event path: UDP datagrams to a closed port in a namespace of our own (one NO_SOCKET drop each, the
          namespace's Udp NoPorts counts them), paced at --rate for --seconds, in each mode, --repeat times:
            baseline     nothing records
            recorder     the layer's Recorder (hist trigger where the kernel has them, else the event buffer)
            net_dm_summary / net_dm_packet   the NET_DM drop-monitor netlink family (dropwatch's), where the kernel
                         has it: summary alerts (locations and counts) or one message per dropped packet (with reason)
          Per mode (medians): datagrams/s the sender reached, the sender's CPU per datagram (the tracepoint's cost is
          paid in its context: loopback delivers in the sending syscall), the recording process's CPU, and the
          accounting: (events counted for NO_SOCKET at the UDP receive + events reported lost) / NoPorts delta.
  fleet   diagnose.yml over the fleet lab at interval 5 s with and without drop reasons (packetloss_drop_reasons),
          alternating, --repeat times each: wall time and the hosts' CPU (their cgroups). The fleet is started with
          NETDIAG_FLEET_TRACEFS=1 (the hosts record through the machine's tracefs, as root hosts do), and stopped after.

    python bench/drop_reasons_cost.py flood --rate 100000 --seconds 5 --repeat 3
    python bench/drop_reasons_cost.py fleet --hosts 50 --repeat 3

Benchmarks, not tests: they print ratios; docs/drop-reasons.md records the results. Standard library only (the flood
part runs in the VM lab too: copy the collection's plugins/ next to it, see docs/drop-reasons.md).
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(ROOT, ".ansible", "collections"), os.path.join(ROOT, "collections")):
    if os.path.isdir(_path):
        sys.path.insert(0, _path)
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel import dropreasons as _dropreasons  # noqa: E402

# the sender, inside the namespace: paced to RATE datagrams/s for SECONDS, in batches; prints what it sent
SENDER = r"""
import json, socket, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload, dest, batch = b"x" * 16, ("127.0.0.1", 9), 500
sent, start = 0, time.monotonic()
end = start + seconds
while True:
    now = time.monotonic()
    if now >= end:
        break
    due = int((now - start) * rate) + batch
    while sent < due:
        for _ in range(batch):
            try:
                s.sendto(payload, dest)
            except OSError:
                pass
        sent += batch
    ahead = sent / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(min(ahead, 0.01))
print(json.dumps({"sent": sent, "seconds": time.monotonic() - start}))
"""


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout


def noports(ns: str) -> int:
    lines = [l.split() for l in sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").splitlines() if l.startswith("Udp:")]
    return int(lines[1][lines[0].index("NoPorts")])


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def flood(ns: str, rate: float, seconds: float) -> Dict[str, Any]:
    """One flood: the sender's report, its CPU seconds (wait4 rusage) and the NoPorts delta."""
    before = noports(ns)
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SENDER, str(rate), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _pid, _status, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    res = json.loads(out)
    res["cpu"] = usage.ru_utime + usage.ru_stime
    res["noports"] = noports(ns) - before
    return res


# ------------------------------------------------------------------------------------------------
# NET_DM: the drop monitor's generic netlink family (include/uapi/linux/net_dropmon.h)
# ------------------------------------------------------------------------------------------------

NETLINK_GENERIC, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 16, 270, 1
NLM_F_REQUEST, NLM_F_ACK, NLMSG_ERROR, NLMSG_DONE = 1, 4, 2, 3
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 16, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_MCAST_GROUPS = 1, 2, 7
DM_ALERT, DM_CONFIG, DM_START, DM_STOP, DM_PACKET_ALERT, DM_STATS_GET, DM_STATS_NEW = 1, 2, 3, 4, 5, 8, 9
A_ALERT_MODE, A_SYMBOL, A_TRUNC_LEN, A_QUEUE_LEN, A_STATS, A_SW_DROPS, A_REASON = 1, 3, 9, 11, 12, 20, 23
SUMMARY, PACKET = 0, 1


def _nla(kind: int, payload: bytes = b"") -> bytes:
    data = struct.pack("HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _attrs(data: bytes) -> Dict[int, bytes]:
    out, i = {}, 0
    while i + 4 <= len(data):
        length, kind = struct.unpack_from("HH", data, i)
        if length < 4:
            break
        out[kind & 0x3fff] = data[i + 4:i + length]
        i += (length + 3) & ~3
    return out


def _messages(data: bytes) -> List[Tuple[int, int, bytes]]:
    """(type, genl cmd, attributes) of each netlink message in ``data``."""
    out, i = [], 0
    while i + 16 <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("IHHII", data, i)
        if length < 16:
            break
        body = data[i + 16:i + length]
        if kind == NLMSG_ERROR:
            code = struct.unpack_from("i", body)[0]
            if code:
                raise OSError(-code, os.strerror(-code))
        elif kind != NLMSG_DONE and len(body) >= 4:
            out.append((kind, body[0], body[4:]))
        i += (length + 3) & ~3
    return out


class NetDM:
    """A NET_DM session: config (alert mode), start, a thread counting the alerts, stop, stats."""

    def __init__(self, mode: int) -> None:
        self.mode = mode
        self.ctl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.ctl.bind((0, 0))
        self.seq = 0
        self.family, self.group = self._resolve()
        self.events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.events.setsockopt(socket.SOL_SOCKET, 33, 32 * 1024 * 1024)  # SO_RCVBUFFORCE
        self.events.bind((0, 0))
        self.events.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, self.group)
        self.counts: Dict[Tuple[str, str], int] = {}
        self.messages = 0
        self.overruns = 0  # ENOBUFS: the socket's buffer overflowed, an unknown number of alerts lost
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _request(self, family: int, cmd: int, attrs: bytes, ack: bool = True) -> List[Tuple[int, int, bytes]]:
        self.seq += 1
        body = struct.pack("BBH", cmd, 1, 0) + attrs
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        self.ctl.send(struct.pack("IHHII", 16 + len(body), family, flags, self.seq, 0) + body)
        replies = []
        while True:
            msgs = _messages(self.ctl.recv(1 << 20))
            replies.extend(msgs)
            if not ack or not msgs or msgs[-1][0] != family or cmd in (CTRL_CMD_GETFAMILY, DM_STATS_GET):
                return replies

    def _resolve(self) -> Tuple[int, int]:
        try:
            reply = self._request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, _nla(CTRL_ATTR_FAMILY_NAME, b"NET_DM\0"), ack=False)
        except OSError as exc:
            raise RuntimeError("no NET_DM family in this kernel (CONFIG_NET_DROP_MONITOR): %s" % exc.strerror)
        attrs = _attrs(reply[0][2])
        family = struct.unpack("H", attrs[CTRL_ATTR_FAMILY_ID][:2])[0]
        groups = _attrs(attrs[CTRL_ATTR_MCAST_GROUPS])
        group = next(struct.unpack("I", _attrs(g)[2][:4])[0] for g in groups.values())
        return family, group

    def start(self) -> None:
        cfg = _nla(A_ALERT_MODE, bytes([self.mode])) + _nla(A_TRUNC_LEN, struct.pack("I", 64)) + \
            _nla(A_QUEUE_LEN, struct.pack("I", 1000))
        self._request(self.family, DM_CONFIG, cfg)
        self._thread.start()
        self._request(self.family, DM_START, _nla(A_SW_DROPS))

    def _read(self) -> None:
        started = time.thread_time()
        self.events.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = self.events.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                break
            for _kind, cmd, attrs in _messages(data):
                self.messages += 1
                a = _attrs(attrs)
                if cmd == DM_PACKET_ALERT:
                    key = (a.get(A_REASON, b"?").rstrip(b"\0").decode(), a.get(A_SYMBOL, b"?").rstrip(b"\0").decode())
                    self.counts[key] = self.counts.get(key, 0) + 1
                elif cmd == DM_ALERT and 0 in a:  # struct net_dm_alert_msg: u32 entries, {u8 pc[8]; u32 count}[]
                    raw = a[0]
                    entries = struct.unpack_from("I", raw)[0]
                    for k in range(entries):
                        pc, count = struct.unpack_from("QI", raw, 4 + 12 * k)
                        key = ("(none: summary mode)", hex(pc))
                        self.counts[key] = self.counts.get(key, 0) + count
        self.cpu = time.thread_time() - started

    def stop(self) -> Dict[str, Any]:
        self._request(self.family, DM_STOP, _nla(A_SW_DROPS))
        time.sleep(1.5)  # summary alerts are sent once a second per CPU; packet alerts by a work item
        self._stop.set()
        self._thread.join(5)
        dropped = None
        for _kind, cmd, attrs in self._request(self.family, DM_STATS_GET, b""):
            if cmd == DM_STATS_NEW and A_STATS in _attrs(attrs):
                stats = _attrs(_attrs(attrs)[A_STATS])
                dropped = struct.unpack("Q", stats[1][:8])[0] if 1 in stats else None
        self.ctl.close()
        self.events.close()
        return {"counts": self.counts, "messages": self.messages, "overruns": self.overruns, "dropped": dropped,
                "cpu": self.cpu}


def kallsyms(addresses: List[int]) -> Dict[int, str]:
    """The function each address is in, from /proc/kallsyms (summary mode gives program counters only)."""
    syms = []
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "tT":
                syms.append((int(parts[0], 16), parts[2]))
    syms.sort()
    out = {}
    for addr in addresses:
        lo, hi = 0, len(syms)
        while lo < hi:
            mid = (lo + hi) // 2
            if syms[mid][0] <= addr:
                lo = mid + 1
            else:
                hi = mid
        out[addr] = syms[lo - 1][1] if lo else "?"
    return out


# ------------------------------------------------------------------------------------------------
# flood
# ------------------------------------------------------------------------------------------------

def one(mode: str, ns: str, rate: float, seconds: float) -> Dict[str, Any]:
    cpu0 = cpu_self()
    rec, dm = None, None
    if mode == "recorder":
        rec = _dropreasons.Recorder().start()
    elif mode.startswith("net_dm"):
        dm = NetDM(SUMMARY if mode == "net_dm_summary" else PACKET)
        dm.start()
    res = flood(ns, rate, seconds)
    out = {"mode": mode, "sent": res["sent"], "rate": res["sent"] / res["seconds"], "sender_cpu_us": 1e6 * res["cpu"] / res["sent"],
           "noports": res["noports"]}
    if rec is not None:
        t = time.monotonic()
        facts = rec.stop()
        counted = sum(e["count"] for e in facts["events"] if e["reason"] == "NO_SOCKET" and e["location"] == "__udp4_lib_rcv")
        out.update(method=facts["method"], stop_s=time.monotonic() - t, counted=counted, lost=facts["lost"], total=facts["total"],
                   recorder_cpu=cpu_self() - cpu0)
    elif dm is not None:
        got = dm.stop()
        counts = got["counts"]
        if mode == "net_dm_summary":
            names = kallsyms([int(loc, 16) for _r, loc in counts])
            counts = dict(((r, names[int(l, 16)]), n) for (r, l), n in counts.items())
        counted = sum(n for (_r, loc), n in counts.items() if loc.startswith("__udp4_lib_rcv"))
        reasons = sorted(set(r for (r, loc), _n in counts.items() if loc.startswith("__udp4_lib_rcv")))
        out.update(method=mode, counted=counted, lost=got["dropped"] or 0, overruns=got["overruns"],
                   messages=got["messages"], reasons=reasons, recorder_cpu=cpu_self() - cpu0)
    if "counted" in out and out["noports"]:
        out["accounted"] = (out["counted"] + out["lost"]) / out["noports"]
    return out


def cmd_flood(args: argparse.Namespace) -> Dict[str, Any]:
    ns = "nd-flood-%d" % os.getpid()
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        modes = ["baseline", "recorder"]
        try:
            NetDM(SUMMARY).ctl.close()
            modes += ["net_dm_summary", "net_dm_packet"]
        except RuntimeError as exc:
            print("# %s: NET_DM modes skipped" % exc)
        runs: Dict[str, List[Dict[str, Any]]] = dict((m, []) for m in modes)
        for i in range(args.repeat):
            for mode in modes:
                r = one(mode, ns, args.rate, args.seconds)
                runs[mode].append(r)
                print(json.dumps(dict(r, run=i)), flush=True)
    finally:
        sh("ip", "netns", "del", ns)
    base = statistics.median(r["rate"] for r in runs["baseline"])
    base_cpu = statistics.median(r["sender_cpu_us"] for r in runs["baseline"])
    print("\nkernel %s, %d CPUs, asked %d drops/s for %s s, medians of %d:" % (
        os.uname().release, os.cpu_count() or 0, args.rate, args.seconds, args.repeat))
    header = ("mode", "drops/s", "x base", "sender us/drop", "x base", "recorder s", "lost %", "accounted")
    print("%-16s %12s %9s %14s %9s %12s %10s %10s" % header)
    summary = {}
    for mode, rs in runs.items():
        row = {"rate": statistics.median(r["rate"] for r in rs), "sender_cpu_us": statistics.median(r["sender_cpu_us"] for r in rs)}
        if mode != "baseline":
            row["recorder_cpu"] = statistics.median(r["recorder_cpu"] for r in rs)
            row["lost_percent"] = statistics.median(100.0 * r["lost"] / max(1, r["noports"]) for r in rs)
            row["accounted"] = statistics.median(r.get("accounted") or 0.0 for r in rs)
            row["method"] = rs[0]["method"]
        summary[mode] = row
        print("%-16s %12.0f %9.2f %14.2f %9.2f %12s %10s %10s" % (
            mode + ("/" + row["method"] if mode == "recorder" else ""), row["rate"], row["rate"] / base,
            row["sender_cpu_us"], row["sender_cpu_us"] / base_cpu,
            "%.2f" % row["recorder_cpu"] if "recorder_cpu" in row else "-",
            "%.1f" % row["lost_percent"] if "lost_percent" in row else "-",
            "%.3f" % row["accounted"] if "accounted" in row else "-"))
    return {"kernel": os.uname().release, "rate": args.rate, "seconds": args.seconds, "runs": runs, "summary": summary}


# ------------------------------------------------------------------------------------------------
# fleet
# ------------------------------------------------------------------------------------------------

def cmd_fleet(args: argparse.Namespace) -> Dict[str, Any]:
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import fleet_bench as fb  # noqa: E402  (the fleet bench's helpers: lab, inventory, containers' CPU)
    env = dict(os.environ, NETDIAG_FLEET_TRACEFS="1")
    inventory = os.path.join(ROOT, "lab", ".state", "fleet", "inventory.yml")
    fb.sh([fb.FLEET_LAB, "start", str(args.hosts)], env=env)
    try:
        ids = fb.container_ids(args.hosts)
        play_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        fb.sh(["ansible", "fleet", "-i", inventory, "-f", str(args.forks), "-m", "ansible.builtin.ping"], env=play_env)
        runs: Dict[str, List[Dict[str, float]]] = {"without": [], "with": []}
        for i in range(args.repeat):
            for name in ("without", "with"):
                extra = json.dumps({"packetloss_interval": 5, "packetloss_drop_reasons": name == "with",
                                    "packetloss_report_dir": "/tmp/netdiag-dropcost-reports"})
                cpu0 = fb.targets_cpu(ids)
                t = time.monotonic()
                out = fb.sh(["ansible-playbook", "-i", inventory, "-f", str(args.forks), "playbooks/diagnose.yml", "-e", extra],
                            env=play_env)
                wall = time.monotonic() - t
                cpu1 = fb.targets_cpu(ids)
                r = {"wall": wall, "targets_cpu": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
                     "drops_read": out.count("drop_reasons not recorded") == 0}
                runs[name].append(r)
                print(json.dumps(dict(r, run=i, drop_reasons=name)), flush=True)
    finally:
        fb.sh([fb.FLEET_LAB, "stop"], env=env)
    med = dict((k, dict(wall=statistics.median(r["wall"] for r in v),
                        cpu=statistics.median(r["targets_cpu"] or 0.0 for r in v))) for k, v in runs.items())
    print("\n%d hosts, forks %d, interval 5 s, medians of %d:" % (args.hosts, args.forks, args.repeat))
    print("  without drop reasons: %.1f s wall, %.1f CPU s on the hosts" % (med["without"]["wall"], med["without"]["cpu"]))
    print("  with drop reasons:    %.1f s wall, %.1f CPU s on the hosts" % (med["with"]["wall"], med["with"]["cpu"]))
    print("  ratio: wall %.3fx (goal <= 1.1), hosts' CPU %.2fx" % (
        med["with"]["wall"] / med["without"]["wall"], med["with"]["cpu"] / max(1e-9, med["without"]["cpu"])))
    return {"hosts": args.hosts, "forks": args.forks, "runs": runs, "medians": med}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--rate", type=float, default=100000)
    f.add_argument("--seconds", type=float, default=5.0)
    f.add_argument("--repeat", type=int, default=3)
    g = sub.add_parser("fleet")
    g.add_argument("--hosts", type=int, default=50)
    g.add_argument("--forks", type=int, default=50)
    g.add_argument("--repeat", type=int, default=3)
    for p in (f, g):
        p.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    result = cmd_flood(args) if args.cmd == "flood" else cmd_fleet(args)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1, default=str)


if __name__ == "__main__":
    main()
