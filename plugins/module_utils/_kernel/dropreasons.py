# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's drop reasons: the ``skb:kfree_skb`` tracepoint, recorded through tracefs over an interval.

Every packet the kernel frees as dropped passes ``kfree_skb_reason()``, which fires ``skb:kfree_skb`` with the
code ``location`` that dropped it and (kernel >= 5.17) an ``enum skb_drop_reason``. This module records that
event in a tracing INSTANCE of its own (``<tracefs>/instances/netdiag-<pid>-<epoch>``), so nobody else's tracing
is touched, and aggregates it by (reason, location):

- with hist triggers (``CONFIG_HIST_TRIGGERS``: the instance's ``trigger`` file lists ``hist``), in the kernel:
  ``hist:keys=reason,location.sym`` on the event, which is not enabled (a trigger fires on a soft-disabled event,
  nothing goes through the ring buffer); ``Dropped`` of the histogram counts the events not aggregated;
- else from the event buffer: the event is enabled in the instance, whose per-CPU buffer is bounded
  (BUFFER_KB_TOTAL over all CPUs, at most BUFFER_KB_PER_CPU each), and a thread drains ``trace_pipe`` during the
  interval, counting lines; events the buffer could not hold are counted from ``per_cpu/cpu*/stats``
  (``overrun`` + ``dropped events``) and reported as ``lost``.

Reason NAMES come from the running kernel's ``events/skb/kfree_skb/format`` (its ``__print_symbolic`` table):
the numbers move between kernels (NOT_SPECIFIED is 1 on 6.1, 2 on 6.18). A kernel without the ``reason`` field
(< 5.17) gives locations only.

The system is left as found: tracefs is mounted at /sys/kernel/tracing only if it was not, and unmounted after;
the instance is removed when recording stops, when the module fails, and on SIGTERM/SIGINT/SIGHUP (turned into
SystemExit, so every ``finally`` runs). A watchdog process, forked when the instance is made, removes it (and
unmounts what was mounted) when the module process dies without doing it (SIGKILL), and every start removes
instances ``netdiag-<pid>-<epoch>-<pid namespace>`` whose process is gone (a process of this PID namespace) or that
are older than STALE_AFTER seconds (any: tracefs is shared with the containers of the host, whose PIDs we cannot see).

Over two module runs (the diagnose role with probes: the probes run between the snapshots), ``hold()`` starts the
recording in a KEEPER process of its own, detached from the module (its own session, no stdio), which drains the
buffer during the interval, listens on a unix socket ``SESSION_DIR/<instance>.sock`` (a root-only directory) and
removes the instance when the next run asks for the recording (``resume()``) or when its hold runs out, whichever
comes first; its own watchdog and the stale-instance clean-up cover it being killed.

The tracepoint carries no network namespace: what is recorded is per HOST.

This module_utils is PRIVATE and should only be used by this collection. Standard library only.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import select
import signal
import socket
import stat
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.fileio import RUN_DIR, InputError, read_text
from ansible_collections.netdiag.packetloss.plugins.module_utils._common.limits import HOLD_MAX, MAX_INTERVAL

TRACEFS = "/sys/kernel/tracing"
EVENT = "events/skb/kfree_skb"
PREFIX = "netdiag-"
# an instance of ours whose process is gone, or older than this, is left over by a killed run
STALE_AFTER = MAX_INTERVAL + 600
BUFFER_KB_PER_CPU = 1024
BUFFER_KB_TOTAL = 32 * 1024
HIST_SIZE = 4096  # (reason, location) pairs the histogram holds; more are counted in its "Dropped"
FILE_MAX = 4 * 1024 * 1024  # format, trigger, hist, stats files
READ_CHUNK = 1024 * 1024
DRAIN_MAX_SECONDS = 5.0  # after the interval, the buffer is drained for at most this long
RMDIR_TRIES = 20
# a recording kept over two module runs (hold / resume, for at most HOLD_MAX s, less than STALE_AFTER: another run never
# takes a held instance for a stale one): its keeper's socket directory, how long to wait for it to start or stop
SESSION_DIR = RUN_DIR
KEEPER_TIMEOUT = 30.0
# causes of an unavailable layer
NO_TRACEFS, NO_EVENT, NO_ROOT, DENIED, NO_INTERVAL, NOT_LIVE, FAILED = (
    "no_tracefs", "no_event", "no_root", "denied", "no_interval", "not_live", "failed")
# causes for which the kernel or the run does not offer the layer at all (not a read failure: nothing to hide)
NOT_OFFERED = (NO_TRACEFS, NO_EVENT, NO_INTERVAL, NOT_LIVE)


class Unavailable(Exception):
    """Drop reasons cannot be recorded here: ``cause`` (one of the causes above) and the message say why."""

    def __init__(self, cause: str, reason: str) -> None:
        super(Unavailable, self).__init__(reason)
        self.cause = cause


# ------------------------------------------------------------------------------------------------
# parsing (pure)
# ------------------------------------------------------------------------------------------------

_SYMBOLIC = re.compile(r"\{\s*(-?\d+|0x[0-9a-fA-F]+)\s*,\s*\"([A-Za-z0-9_]+)\"\s*\}")
_FIELD = re.compile(r"^\s*field:[^;]*?\b([A-Za-z_][A-Za-z0-9_]*)(?:\[\d*\])?;", re.M)


def parse_format(text: str) -> Dict[str, Any]:
    """The ``format`` file of skb:kfree_skb: {fields, reasons: {number: name}, location_symbol}.

    ``reasons`` is empty on a kernel without the ``reason`` field (< 5.17); ``location_symbol`` says whether the
    buffer's text names the location as a symbol (``%pS``, about 6.11 on) or as a hashed pointer (``%p``).
    """
    fields = _FIELD.findall(text)
    if "location" not in fields:
        raise ValueError("not the format of skb:kfree_skb: no location field")
    fmt = text.split("print fmt:", 1)[1] if "print fmt:" in text else ""
    reasons: Dict[int, str] = {}
    if "reason" in fields:
        sym = fmt.split("__print_symbolic(", 1)[1] if "__print_symbolic(" in fmt else ""
        for num, name in _SYMBOLIC.findall(sym):
            reasons[int(num, 0)] = name
    return {"fields": fields, "reasons": reasons, "location_symbol": "location=%pS" in fmt or "location=%ps" in fmt}


def reason_name(reasons: Dict[int, str], number: int) -> str:
    return reasons.get(number) or "UNKNOWN_%d" % number


def hist_supported(trigger_text: str) -> bool:
    """Whether an event's ``trigger`` file offers ``hist``: with no trigger set, it reads
    ``# Available triggers:`` and, on the next comment line, their names
    (``# traceon traceoff snapshot stacktrace enable_event disable_event enable_hist disable_hist hist``)."""
    lines = trigger_text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# Available triggers"):
            names = line.split(":", 1)[1].split() if ":" in line else []
            for nxt in lines[i + 1:]:
                if not nxt.startswith("#"):
                    break
                names.extend(nxt.lstrip("#").split())
            return "hist" in names
    return False


def _symbol(text: str) -> str:
    """``ip6_mc_input+0x1a4/0x2a0`` or ``[ffffffff81b3c1a0] ip6_mc_input`` -> ``ip6_mc_input``; a module's
    ``[mod]`` suffix is kept as ``sym [mod]``."""
    text = re.sub(r"^\[[0-9a-fA-Fx]+\]\s*", "", text.strip())
    mod = ""
    m = re.search(r"\s*(\[[A-Za-z0-9_\-]+\])\s*$", text)
    if m:
        mod, text = " " + m.group(1), text[:m.start()]
    return re.sub(r"\+0x[0-9a-fA-F]+(/0x[0-9a-fA-F]+)?$", "", text.strip()) + mod


_HIST_ROW = re.compile(r"^\{(?P<keys>.*)\}\s*hitcount:\s*(?P<count>\d+)", re.M)
_TOTAL = re.compile(r"^\s*(Hits|Entries|Dropped):\s*(\d+)", re.M)


def parse_hist(text: str, reasons: Dict[int, str]) -> Dict[str, Any]:
    """The ``hist`` file of ``hist:keys=reason,location.sym`` (or ``keys=location.sym`` without reasons), as
    Documentation/trace/histogram.rst shows it::

        { reason:          3, location: [ffffffff81a2c110] __udp4_lib_rcv                } hitcount:          5
        ...
        Totals:
            Hits: 12
            Entries: 2
            Dropped: 0

    -> {events: [{reason, location, count}], hits, entries, dropped}; numeric reasons named through ``reasons``.
    """
    events: List[Dict[str, Any]] = []
    for m in _HIST_ROW.finditer(text):
        keys: Dict[str, str] = {}
        for part in re.split(r",\s*(?=[A-Za-z_][A-Za-z0-9_.]*:)", m.group("keys")):
            if ":" in part:
                k, v = part.split(":", 1)
                keys[k.strip()] = v.strip()
        if "location" not in keys:
            raise ValueError("hist row without a location key: %s" % m.group(0)[:200])
        reason: Optional[str] = None
        if "reason" in keys:
            raw = keys["reason"]
            reason = reason_name(reasons, int(raw, 0)) if re.match(r"^(0x[0-9a-fA-F]+|\d+)$", raw) else raw
        events.append({"reason": reason, "location": _symbol(keys["location"]), "count": int(m.group("count"))})
    totals = dict((k.lower(), int(v)) for k, v in _TOTAL.findall(text))
    return {"events": merge_events(events), "hits": totals.get("hits", sum(e["count"] for e in events)),
            "entries": totals.get("entries", len(events)), "dropped": totals.get("dropped", 0)}


# one kfree_skb line of the text buffer (trace_pipe): "... kfree_skb: skbaddr=... location=SYM+0x1/0x2 reason: NAME"
_LINE = re.compile(rb"kfree_skb: [^\n]*?location=(\S+)(?: reason: (\S+))?[ \t]*$", re.M)


def count_lines(chunk: bytes, counts: Dict[Tuple[Optional[str], str], int], symbols: bool = True) -> int:
    """Add the kfree_skb lines of ``chunk`` (whole lines) to ``counts`` {(reason, location): n}; the lines counted.

    ``symbols`` false: the location is a hashed pointer (``%p``, kernels before about 6.11), recorded as ``?``.
    """
    n = 0
    for loc, reason in _LINE.findall(chunk):
        location = _symbol(loc.decode("ascii", "replace")) if symbols else "?"
        key = (reason.decode("ascii", "replace") if reason else None, location)
        counts[key] = counts.get(key, 0) + 1
        n += 1
    return n


def parse_cpu_stats(text: str) -> Dict[str, int]:
    """``per_cpu/cpuN/stats``: {entries, overrun, commit overrun, dropped events, read events, ...} (integers only)."""
    out: Dict[str, int] = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            v = v.strip()
            if re.match(r"^\d+$", v):
                out[k.strip()] = int(v)
    return out


def merge_events(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Events summed per (reason, location), the largest first."""
    acc: Dict[Tuple[Any, Any], int] = {}
    for e in events:
        key = (e.get("reason"), e.get("location"))
        acc[key] = acc.get(key, 0) + int(e.get("count") or 0)
    rows = [{"reason": r, "location": l, "count": c} for (r, l), c in acc.items()]
    return sorted(rows, key=lambda e: (-e["count"], str(e["reason"]), str(e["location"])))


# ------------------------------------------------------------------------------------------------
# tracefs
# ------------------------------------------------------------------------------------------------

_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _mount_tracefs(path: str) -> None:
    if _c().mount(b"nodev", path.encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _umount(path: str) -> None:
    if _c().umount2(path.encode(), 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def is_mounted(path: str, mountinfo: str = "/proc/self/mountinfo") -> bool:
    """Whether a tracefs is mounted exactly at ``path`` (from mountinfo)."""
    try:
        text = read_text(mountinfo, FILE_MAX)
    except InputError:
        return os.path.exists(os.path.join(path, "instances"))
    for line in text.splitlines():
        parts = line.split(" - ", 1)
        left = parts[0].split()
        if len(left) >= 5 and left[4] == path and len(parts) == 2 and parts[1].split()[:1] == ["tracefs"]:
            return True
    return False


def _read(path: str) -> str:
    return read_text(path, FILE_MAX)


def _write(path: str, text: str) -> None:
    """Write a tracefs control file. A ``trigger`` file is opened for appending: opened with O_TRUNC it removes every
    trigger of the event first (so a ``:pause`` written that way replaced the histogram with an empty one)."""
    flags = os.O_APPEND if os.path.basename(path) == "trigger" else os.O_TRUNC
    fd = os.open(path, os.O_WRONLY | flags | getattr(os, "O_CLOEXEC", 0))
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


_NAME = re.compile(r"^" + re.escape(PREFIX) + r"(\d+)-(\d+)(?:-(\d+))?$")


def pid_namespace() -> Optional[int]:
    """The inode of this process's PID namespace (None where it cannot be read): a PID means something only there."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def instance_name(pid: int, epoch: int, pidns: Optional[int]) -> str:
    return "%s%d-%d" % (PREFIX, pid, epoch) + ("-%d" % pidns if pidns is not None else "")


def is_instance_name(name: str) -> bool:
    return bool(_NAME.match(name))


def stale_instances(names: List[str], now: float, alive: Callable[[int], bool] = _pid_alive,
                    own_pid: Optional[int] = None, own_pidns: Optional[int] = None) -> List[str]:
    """Our instance names (``netdiag-<pid>-<epoch>[-<pid namespace>]``) left over: older than STALE_AFTER, or made
    in this PID namespace (or with no namespace in the name) by a process that is gone. tracefs is the host's, shared
    with its containers: an instance made in another PID namespace (another container diagnosing its host) is
    never judged by a PID that means another process here, only by its age."""
    out = []
    for name in names:
        m = _NAME.match(name)
        if not m:
            continue
        pid, born = int(m.group(1)), int(m.group(2))
        ns = int(m.group(3)) if m.group(3) else None
        if now - born > STALE_AFTER:
            out.append(name)
            continue
        if ns is not None and own_pidns is not None and ns != own_pidns:
            continue
        if pid != own_pid and not alive(pid):
            out.append(name)
    return out


def remove_instance(path: str) -> Optional[str]:
    """Stop the event of the instance at ``path`` and remove it; None when gone, else why it is not."""
    if not os.path.isdir(path):
        return None
    for rel, text in ((EVENT + "/enable", "0"), ("tracing_on", "0")):
        try:
            _write(os.path.join(path, rel), text)
        except OSError:
            pass
    try:
        trig = _read(os.path.join(path, EVENT, "trigger"))
        for line in trig.splitlines():
            if line.startswith("hist:"):
                try:
                    _write(os.path.join(path, EVENT, "trigger"), "!" + line.split(" [", 1)[0].strip())
                except OSError:
                    pass
    except InputError:
        pass
    last = None
    for i in range(RMDIR_TRIES):
        try:
            os.rmdir(path)
            return None
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            last = exc
            if exc.errno != errno.EBUSY:
                break
            time.sleep(0.05 * (i + 1))
    return "cannot remove %s: %s" % (path, last.strerror if last is not None else "?")


def clean_stale(root: str, now: Optional[float] = None) -> List[str]:
    """Remove the stale instances of ours under ``root``/instances; the names removed."""
    inst = os.path.join(root, "instances")
    try:
        names = os.listdir(inst)
    except OSError:
        return []
    removed = []
    for name in stale_instances(names, time.time() if now is None else now, own_pid=os.getpid(), own_pidns=pid_namespace()):
        if remove_instance(os.path.join(inst, name)) is None:
            removed.append(name)
    return removed


def _watchdog(instance: str, root: Optional[str]) -> Tuple[int, int]:
    """Fork a process that removes ``instance`` (and unmounts ``root`` if given) once this process is gone.

    It waits for end-of-file on a pipe whose write end only this process holds: the kernel closes it whatever way
    this process ends (SIGKILL included). Returns (pid, write fd); closing the fd after a clean stop lets it exit.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the watchdog: no stdio of the module (Ansible waits for its stdout to close), nothing else open
        try:
            os.setsid()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, r)
            os.closerange(r + 1, 65536)
            while True:
                try:
                    if not os.read(r, 64):
                        break
                except OSError as exc:
                    if exc.errno != errno.EINTR:
                        break
            if os.path.isdir(instance):
                remove_instance(instance)
                if root is not None:
                    try:
                        _umount(root)
                    except OSError:
                        pass
        finally:
            os._exit(0)
    os.close(r)
    return pid, w


class Recorder:
    """One recording of skb:kfree_skb: ``start()``, then ``stop()`` -> the layer's facts; ``close()`` always."""

    def __init__(self, root: str = TRACEFS) -> None:
        self.root = root
        self.mounted = False
        self.instance: Optional[str] = None
        self.method: Optional[str] = None
        self.fmt: Dict[str, Any] = {}
        self.started = 0.0
        self.notes: List[str] = []
        self.stale_removed: List[str] = []
        self.buffer_kb: Optional[int] = None
        self._fd: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._counts: Dict[Tuple[Optional[str], str], int] = {}
        self._lines = 0
        self._read_bytes = 0
        self._watch: Optional[Tuple[int, int]] = None
        self._old_handlers: Dict[int, Any] = {}
        self._hist_cmd: Optional[str] = None
        self._tail = b""

    # -- start ---------------------------------------------------------------------------------------
    def start(self) -> "Recorder":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        if not is_mounted(self.root):
            if "tracefs" not in _filesystems():
                raise Unavailable(NO_TRACEFS, "this kernel has no tracefs (not in /proc/filesystems): no drop reasons")
            if not os.path.isdir(self.root):
                raise Unavailable(NO_TRACEFS, "%s does not exist (sysfs not mounted?): tracefs cannot be mounted" % self.root)
            try:
                _mount_tracefs(self.root)
            except OSError as exc:
                cause = NO_ROOT if exc.errno in (errno.EPERM, errno.EACCES) else FAILED
                raise Unavailable(cause, "tracefs is not mounted at %s and mounting it failed: %s%s" % (
                    self.root, exc.strerror, " (needs root / CAP_SYS_ADMIN; in a container, tracefs is not offered)"
                    if cause == NO_ROOT else ""))
            self.mounted = True
        fmt_path = os.path.join(self.root, EVENT, "format")
        if not os.path.exists(fmt_path):
            if not os.access(os.path.join(self.root, "events"), os.R_OK | os.X_OK):
                raise Unavailable(NO_ROOT, "%s is not readable here (needs root): no drop reasons" % self.root)
            raise Unavailable(NO_EVENT, "this kernel has no skb:kfree_skb tracepoint (no %s)" % fmt_path)
        try:
            self.fmt = parse_format(_read(fmt_path))
        except InputError as exc:
            raise Unavailable(NO_ROOT if exc.reason and "ermission" in exc.reason else DENIED, str(exc))
        except ValueError as exc:
            raise Unavailable(FAILED, "%s: %s" % (fmt_path, exc))
        self.stale_removed = clean_stale(self.root)
        name = instance_name(os.getpid(), int(time.time()), pid_namespace())
        path = os.path.join(self.root, "instances", name)
        try:
            os.mkdir(path)
        except OSError as exc:
            cause = NO_ROOT if exc.errno in (errno.EPERM, errno.EACCES) else FAILED
            raise Unavailable(cause, "cannot create the tracing instance %s: %s%s" % (
                path, exc.strerror, " (not root, or the kernel is locked down)" if cause == NO_ROOT else ""))
        self.instance = path
        self._install_handlers()
        self._watch = _watchdog(path, self.root if self.mounted else None)
        ev = os.path.join(path, EVENT)
        if hist_supported(self._try_read(os.path.join(ev, "trigger"))):
            keys = "reason,location.sym" if self.fmt["reasons"] or "reason" in self.fmt["fields"] else "location.sym"
            cmd = "hist:keys=%s:sort=hitcount.descending:size=%d" % (keys, HIST_SIZE)
            try:
                _write(os.path.join(ev, "trigger"), cmd)
                self._hist_cmd = cmd
                self.method = "hist"
                self._set_buffer(4)  # the event is not enabled: its buffer stays empty
            except OSError as exc:
                self.notes.append("hist trigger refused (%s): the event buffer is read instead" % exc.strerror)
        if self.method is None:
            self._start_buffer(path)
        self.started = time.time()

    def recording(self) -> Dict[str, Any]:
        """The layer's facts while it records (the first snapshot's)."""
        return {"available": True, "scope": "host", "state": "recording", "method": self.method,
                "instance": os.path.basename(self.instance or "") or None, "started": self.started,
                "stale_removed": list(self.stale_removed)}

    def _try_read(self, path: str) -> str:
        try:
            return _read(path)
        except InputError:
            return ""

    def _set_buffer(self, kb: int) -> None:
        try:
            _write(os.path.join(self.instance or "", "buffer_size_kb"), str(kb))
            self.buffer_kb = kb
        except OSError as exc:
            self.notes.append("buffer_size_kb not set (%s)" % exc.strerror)

    def _start_buffer(self, path: str) -> None:
        cpus = max(1, os.cpu_count() or 1)
        self._set_buffer(max(64, min(BUFFER_KB_PER_CPU, BUFFER_KB_TOTAL // cpus)))
        self._fd = os.open(os.path.join(path, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            _write(os.path.join(path, EVENT, "enable"), "1")
        except OSError as exc:
            raise Unavailable(DENIED, "cannot enable skb:kfree_skb in %s: %s" % (path, exc.strerror))
        self.method = "buffer"
        self._thread = threading.Thread(target=self._drain_loop, name="netdiag-kfree_skb")
        self._thread.daemon = True
        self._thread.start()

    def _drain_loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _w, _x = select.select([self._fd], [], [], 0.2)
            except (OSError, ValueError):
                return
            if ready:
                self._drain_once()

    def _drain_once(self, tail: bytes = b"") -> bytes:
        """Read what trace_pipe holds now (until it would block); count whole lines; the partial last line back."""
        buf = tail
        while self._fd is not None:
            try:
                chunk = os.read(self._fd, READ_CHUNK)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    break
                raise
            if not chunk:
                break
            self._read_bytes += len(chunk)
            buf += chunk
            cut = buf.rfind(b"\n")
            if cut >= 0:
                self._lines += count_lines(buf[:cut + 1], self._counts, self.fmt.get("location_symbol", True))
                buf = buf[cut + 1:]
        self._tail = buf
        return buf

    # -- stop ----------------------------------------------------------------------------------------
    def stop(self) -> Dict[str, Any]:
        """The recording's facts (see packetloss_facts' RETURN, ``drop_reasons``); the instance is removed."""
        try:
            return self._collect()
        finally:
            self.close()

    def _collect(self) -> Dict[str, Any]:
        ended = time.time()
        out: Dict[str, Any] = {
            "available": True, "scope": "host", "method": self.method, "instance": self.instance,
            "tracefs": self.root, "mounted": self.mounted, "reasons_named": bool(self.fmt.get("reasons")),
            "reason_count": len(self.fmt.get("reasons") or {}), "location_symbols": None,
            "started": self.started, "duration": round(ended - self.started, 3), "notes": list(self.notes),
            "stale_removed": list(self.stale_removed)}
        inst = self.instance or ""
        if self.method == "hist":
            try:
                _write(os.path.join(inst, EVENT, "trigger"), (self._hist_cmd or "") + ":pause")  # stop counting, then read
            except OSError:
                pass  # older kernels: read while it keeps counting (a few events more)
            text = _read(os.path.join(inst, EVENT, "hist"))
            hist = parse_hist(text, self.fmt.get("reasons") or {})
            out.update(events=hist["events"], total=hist["hits"], lost=hist["dropped"], location_symbols=True,
                       lost_source="hist Dropped (pairs the histogram of %d entries could not hold)" % HIST_SIZE)
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(DRAIN_MAX_SECONDS)
            try:
                _write(os.path.join(inst, EVENT, "enable"), "0")
            except OSError:
                pass
            deadline = time.time() + DRAIN_MAX_SECONDS
            tail = self._tail
            while time.time() < deadline:
                before = self._read_bytes
                tail = self._drain_once(tail)
                if self._read_bytes == before:
                    break
            lost = 0
            unread = 0
            per_cpu = os.path.join(inst, "per_cpu")
            for cpu in sorted(os.listdir(per_cpu)) if os.path.isdir(per_cpu) else []:
                stats = parse_cpu_stats(self._try_read(os.path.join(per_cpu, cpu, "stats")))
                lost += stats.get("overrun", 0) + stats.get("dropped events", 0)
                unread += stats.get("entries", 0)
            rows = [{"reason": r, "location": l, "count": c} for (r, l), c in self._counts.items()]
            out.update(events=merge_events(rows), total=self._lines + lost + unread, lost=lost + unread,
                       location_symbols=bool(self.fmt.get("location_symbol")), buffer_kb_per_cpu=self.buffer_kb,
                       lost_source="per_cpu/cpu*/stats overrun + dropped events (the buffer of %s KiB per CPU was full),"
                                   " plus events left unread" % self.buffer_kb)
        return out

    # -- clean up ------------------------------------------------------------------------------------
    def close(self) -> List[str]:
        """Remove the instance, unmount tracefs if it was mounted here, stop the watchdog; what could not be undone."""
        problems: List[str] = []
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(DRAIN_MAX_SECONDS)
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if self.instance is not None:
            why = remove_instance(self.instance)
            if why:
                problems.append(why)
            self.instance = None if why is None else self.instance
        if self.mounted:
            try:
                _umount(self.root)
                self.mounted = False
            except OSError as exc:
                problems.append("tracefs mounted at %s by this run left mounted: %s" % (self.root, exc.strerror))
        if self._watch is not None:
            pid, w = self._watch
            self._watch = None
            try:
                os.close(w)
            except OSError:
                pass
            deadline = time.time() + 5
            while time.time() < deadline:
                try:
                    done, _status = os.waitpid(pid, os.WNOHANG)
                except OSError:
                    break
                if done:
                    break
                time.sleep(0.01)
        self._restore_handlers()
        self.notes.extend(problems)
        return problems

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def _exit(signum: int, _frame: Any) -> None:
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, _exit)
            except (OSError, ValueError):
                pass

    def _restore_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            try:
                signal.signal(sig, old)
            except (OSError, ValueError, TypeError):
                pass
        self._old_handlers = {}


# ------------------------------------------------------------------------------------------------
# a recording kept over two module runs
# ------------------------------------------------------------------------------------------------

def _session_dir(path: str) -> None:
    """Make ``path`` (0700) if it is not there and check it is a directory of ours that nobody else can enter."""
    try:
        os.mkdir(path, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(errno.EPERM, "%s is not a directory of this user closed to others" % path)


def _socket_path(session_dir: str, name: str) -> str:
    return os.path.join(session_dir, name + ".sock")


def _clean_sockets(session_dir: str, root: str) -> None:
    """Remove the sockets of keepers whose instance is gone (a keeper killed with SIGKILL leaves its socket)."""
    try:
        names = os.listdir(session_dir)
    except OSError:
        return
    for entry in names:
        name = entry[:-len(".sock")] if entry.endswith(".sock") else ""
        if is_instance_name(name) and not os.path.isdir(os.path.join(root, "instances", name)):
            try:
                os.unlink(os.path.join(session_dir, entry))
            except OSError:
                pass


def _send(fd: int, msg: Dict[str, Any]) -> None:
    data = json.dumps(msg).encode()
    while data:
        data = data[os.write(fd, data):]


def _detach_stdio(keep: int) -> None:
    """No stdio of the module (Ansible waits for its stdout to close) and no other inherited descriptor."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)


def _keep(status: int, seconds: float, root: str, session_dir: str) -> None:
    """The keeper (see hold): start the recording, say how on ``status``, then serve one ``stop`` or time out."""
    rec = Recorder(root)
    server: Optional[socket.socket] = None
    path: Optional[str] = None
    try:
        try:
            rec.start()
            name = os.path.basename(rec.instance or "")
            _clean_sockets(session_dir, root)
            _session_dir(session_dir)
            path = _socket_path(session_dir, name)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(path)
            os.chmod(path, 0o600)
            server.listen(4)
        except Unavailable as exc:
            _send(status, {"cause": exc.cause, "reason": str(exc)})
            return
        except (OSError, InputError, ValueError) as exc:
            _send(status, {"cause": FAILED, "reason": "the recording could not be kept for the next run: %s" % (
                getattr(exc, "strerror", None) or exc)})
            return
        deadline = time.monotonic() + seconds
        _send(status, {"start": dict(rec.recording(), held_until=round(time.time() + seconds, 3), keeper=os.getpid())})
        os.close(status)
        status = -1
        while time.monotonic() < deadline and os.path.isdir(rec.instance or ""):
            server.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                conn, _addr = server.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(KEEPER_TIMEOUT)
                try:
                    if conn.recv(64).strip() != b"stop":
                        continue
                    try:
                        facts = rec.stop()
                    except (OSError, InputError, ValueError) as exc:
                        facts = {"error": str(exc)}
                    conn.sendall(json.dumps(facts).encode())
                except OSError:
                    continue
            return
    finally:
        if status >= 0:
            os.close(status)
        rec.close()
        if server is not None:
            server.close()
        if path is not None:  # the directory stays: the remediation's locks share it
            try:
                os.unlink(path)
            except OSError:
                pass


def _read_until_eof(fd: int, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data
        ready, _w, _x = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return data
            data += chunk


def hold(seconds: float, root: str = TRACEFS, session_dir: str = SESSION_DIR) -> Dict[str, Any]:
    """Start a recording that outlives this process, for at most ``seconds``: the next module run stops it and reads
    it with ``resume(instance)``. The recording is kept by a process of its own (double-forked, its own session, no
    stdio), which drains the buffer meanwhile and removes the instance after ``seconds`` if nobody asked for it; its
    watchdog and the next run's stale clean-up remove it if the keeper is killed. Returns the first snapshot's facts
    (``state: recording``, ``instance``, ``held_until``, ``keeper``); raises Unavailable where it cannot record."""
    if not 0 < seconds <= HOLD_MAX:
        raise ValueError("a recording is held for 0-%d seconds, got %s" % (HOLD_MAX, seconds))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setsid()
            if os.fork() == 0:
                for sig in (signal.SIGHUP, signal.SIGINT):
                    signal.signal(sig, signal.SIG_IGN)
                _detach_stdio(w)
                _keep(w, seconds, root, session_dir)
        finally:
            os._exit(0)
    os.close(w)
    try:
        os.waitpid(pid, 0)
        data = _read_until_eof(r, KEEPER_TIMEOUT)
    finally:
        os.close(r)
    try:
        msg = json.loads(data.decode()) if data else {}
    except ValueError:
        msg = {}
    if "start" in msg:
        return msg["start"]
    if "cause" in msg:
        raise Unavailable(msg["cause"], msg["reason"])
    raise Unavailable(FAILED, "the process keeping the recording ended before it said it had started")


def resume(name: str, session_dir: str = SESSION_DIR) -> Dict[str, Any]:
    """Stop the recording ``hold`` started (``name``: its ``instance``) and return its facts, as Recorder.stop does;
    the keeper removes the instance. Unavailable (FAILED) when it is no longer kept (its hold ran out, it was
    killed)."""
    if not is_instance_name(name):
        raise ValueError("not a tracing instance of this collection: %r" % name)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(KEEPER_TIMEOUT)
    try:
        try:
            conn.connect(_socket_path(session_dir, name))
        except OSError as exc:
            raise Unavailable(FAILED, "the recording %s started by the first snapshot is no longer kept (its hold ran "
                                      "out or its keeper was killed): %s" % (name, exc.strerror or exc))
        conn.sendall(b"stop\n")
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise Unavailable(FAILED, "the process keeping the recording %s did not answer within %d s" % (name, KEEPER_TIMEOUT))
    finally:
        conn.close()
    try:
        facts = json.loads(data.decode())
    except ValueError:
        raise Unavailable(FAILED, "the process keeping the recording %s ended without handing it over" % name)
    if not isinstance(facts, dict) or "error" in facts:
        raise Unavailable(FAILED, "drop reasons recorded but not read: %s" % (facts.get("error") if isinstance(facts, dict) else facts))
    facts["kept"] = True
    return facts


def _filesystems() -> str:
    try:
        return read_text("/proc/filesystems", FILE_MAX)
    except InputError:
        return ""


__all__ = ["Recorder", "Unavailable", "parse_format", "parse_hist", "count_lines", "parse_cpu_stats", "hist_supported",
           "stale_instances", "clean_stale", "remove_instance", "merge_events", "NOT_OFFERED", "STALE_AFTER", "TRACEFS",
           "hold", "resume", "HOLD_MAX", "SESSION_DIR", "instance_name", "is_instance_name", "pid_namespace"]
