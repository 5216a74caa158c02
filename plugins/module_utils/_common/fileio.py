# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded reading of the files and command outputs the collectors parse: the one place that opens them, and the
one command runner (``spawn``, ``run``): every command the collection starts on a target starts here, never through
a shell, with its output read to a cap.

A path is opened with ``O_RDONLY | O_NONBLOCK | O_CLOEXEC`` (opening a FIFO for reading that way never blocks)
and ``fstat``-ed before a byte is read: only a regular file is read. A FIFO, a character or block device (a
symlink to ``/dev/zero``), a directory or a socket is refused with an error naming the path and what it is.
A regular file is read up to a cap; past it, the read stops and is an error too. procfs files report
``st_size`` 0, so the cap is enforced while reading (in chunks), not from ``st_size`` alone.

The caps, per kind of input (documented in docs/diagnose.md, "Reading inputs safely"; parse cost measured with
Python 3.11 on x86_64):

- ``PROC_MAX`` (8 MiB): one procfs file (``net/dev``, ``net/snmp``, ``net/softnet_stat``, ``nf_conntrack_*``,
  ...). Live files are a few KiB; ``net/dev`` of 10,000 interfaces is about 1.5 MiB.
- ``TC_MAX`` (4 MiB): saved ``tc -s qdisc show`` text (O(src) of tc_facts), about 25,000 netem qdiscs with their
  statistics (a host with thousands of interfaces prints well under 1 MiB). The module parses 8 MiB in about 2 s and
  140 MB, but the controller's cost grows with the number of qdiscs returned: with ansible-core 2.19, an ad-hoc
  tc_facts run on 4 MiB of netem qdiscs took 52 s and 851 MB at its peak, on 16 MiB 240 s and 3 GB.
- ``RULESET_MAX`` (32 MiB): one saved or dumped ruleset (``iptables-save -c``, ``nft -j list``: O(src) of
  iptables_facts and the outputs of those commands), about 250,000 kube-proxy-style rules; parsing 16 MiB of
  them takes about 12 s and 450 MB. The controller's cost grows with the rules returned: use ``rules: drops`` on
  rulesets of many thousand rules.
- ``STDERR_MAX`` (64 KiB): what is kept of a command's standard error (its last lines name the failure).

This module_utils is PRIVATE and should only be used by this collection. Standard library only.
"""
from __future__ import annotations

import os
import selectors
import stat
import subprocess
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

MiB = 1024 * 1024
PROC_MAX = 8 * MiB
TC_MAX = 4 * MiB
RULESET_MAX = 32 * MiB
STDERR_MAX = 64 * 1024
CHUNK = 1024 * 1024
# the collection's runtime directory on a target (root only, 0700): remediation locks, drop-reason keepers' sockets
RUN_DIR = "/run/netdiag-packetloss"
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class InputError(Exception):
    """A file or command output that is refused or cannot be read; the message names the path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super(InputError, self).__init__("%s: %s" % (path, reason))


def kind_of(mode: int) -> str:
    """What a file of st_mode ``mode`` is, in words."""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "a special file (mode %o)" % stat.S_IFMT(mode)


def _oserror(path: str, exc: OSError) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError(path, "does not exist")
    if isinstance(exc, PermissionError):
        return InputError(path, "no permission to read it")
    return InputError(path, "cannot open it: %s" % (exc.strerror or exc))


def open_checked(path: str, regular: bool = True) -> Tuple[int, os.stat_result]:
    """(fd, fstat) of ``path`` opened without blocking; with ``regular`` only a regular file is accepted.

    The caller closes the fd. Raises InputError naming the path and what it is.
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        try:
            mode = os.stat(path).st_mode  # a socket cannot be opened at all (ENXIO): say what it is
        except OSError:
            mode = stat.S_IFREG
        if regular and not stat.S_ISREG(mode):
            raise InputError(path, "is %s, not a regular file: refused" % kind_of(mode))
        raise _oserror(path, exc)
    try:
        st = os.fstat(fd)
        if regular and not stat.S_ISREG(st.st_mode):
            raise InputError(path, "is %s, not a regular file: refused" % kind_of(st.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_bytes(path: str, cap: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``cap`` of them; a longer file is an InputError."""
    fd, st = open_checked(path)
    try:
        if st.st_size > cap:
            raise InputError(path, "is %d bytes, more than the %s this input may have: refused" % (st.st_size, size_text(cap)))
        parts: List[bytes] = []
        total = 0
        while True:
            try:
                chunk = os.read(fd, min(CHUNK, cap + 1 - total))
            except OSError as exc:
                raise InputError(path, "cannot read it: %s" % (exc.strerror or exc))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
            if total > cap:
                raise InputError(path, "holds more than the %s this input may have: refused" % size_text(cap))
        return b"".join(parts)
    finally:
        os.close(fd)


def read_text(path: str, cap: int) -> str:
    """read_bytes decoded as UTF-8 (bytes that are not UTF-8 become U+FFFD)."""
    return read_bytes(path, cap).decode("utf-8", "replace")


def head(path: str, size: int) -> bytes:
    """The first ``size`` bytes of the regular file ``path`` (refused like read_bytes when it is not one)."""
    fd, _st = open_checked(path)
    try:
        return os.read(fd, size)
    except OSError as exc:
        raise InputError(path, "cannot read it: %s" % (exc.strerror or exc))
    finally:
        os.close(fd)


def size_text(n: int) -> str:
    return "%d MiB" % (n // MiB) if n % MiB == 0 else "%d bytes" % n


class Output:
    """What one command printed: ``out`` (None when it was not read), ``err`` (its last bytes), ``returncode``,
    and ``problem``: why ``out`` was not read (too long, too slow), else None."""

    def __init__(self) -> None:
        self.out: Optional[bytes] = b""
        self.err = b""
        self.returncode: Optional[int] = None
        self.problem: Optional[str] = None


def run_bounded(procs: Sequence[subprocess.Popen], cap: int, timeout: float) -> List[Output]:
    """Read the stdout and stderr pipes of every started process at once, each stdout to at most ``cap`` bytes.

    A process whose output passes ``cap``, or that has not finished ``timeout`` seconds from now, is killed and its
    Output has ``out`` None and ``problem`` set. stderr keeps its last STDERR_MAX bytes. Every process is waited for.
    """
    results = [Output() for _proc in procs]
    outs: Dict[int, List[bytes]] = dict((i, []) for i in range(len(procs)))
    sizes = [0] * len(procs)
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    try:
        for i, proc in enumerate(procs):
            for name in ("stdout", "stderr"):
                pipe = getattr(proc, name)
                if pipe is not None:
                    os.set_blocking(pipe.fileno(), False)
                    sel.register(pipe, selectors.EVENT_READ, (i, name))
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _events in sel.select(min(left, 1.0)):
                i, name = key.data
                if results[i].problem is not None:
                    continue
                try:
                    chunk = os.read(key.fd, CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                elif name == "stderr":
                    results[i].err = (results[i].err + chunk)[-STDERR_MAX:]
                elif sizes[i] + len(chunk) > cap:
                    results[i].problem = "printed more than %s: not read (the cap of this input)" % size_text(cap)
                    _kill(procs[i])
                    outs[i] = []
                    for k in [k for k in sel.get_map().values() if k.data[0] == i]:
                        sel.unregister(k.fileobj)
                else:
                    sizes[i] += len(chunk)
                    outs[i].append(chunk)
        for key in list(sel.get_map().values()):  # pipes still open at the deadline
            i = key.data[0]
            if results[i].problem is None:
                results[i].problem = "did not finish within %d s: not read" % timeout
                _kill(procs[i])
    finally:
        sel.close()
    for i, proc in enumerate(procs):
        if results[i].problem is None:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:  # closed its output but did not exit
                results[i].problem = "did not finish within %d s: not read" % timeout
                _kill(proc)
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        results[i].returncode = proc.returncode
        results[i].out = None if results[i].problem else b"".join(outs[i])
    return results


def spawn(argv: Sequence[str], data: Optional[bytes] = None) -> subprocess.Popen:
    """Start ``argv`` (no shell) with its stdout and stderr on pipes (read them with run_bounded) and ``data`` on its
    stdin (from a temporary file: no pipe to feed while reading). Raises OSError (FileNotFoundError: not installed).

    The one place the collection starts a command: modules run from AnsibleModule would use its run_command, but
    the collectors run commands concurrently (run_bounded) and in entered namespaces, also outside a module.
    """
    stdin = None
    if data is not None:
        stdin = tempfile.TemporaryFile()  # pylint: disable=consider-using-with
        stdin.write(data)
        stdin.seek(0)
    try:
        # pylint: disable-next=ansible-bad-function,consider-using-with
        return subprocess.Popen(list(argv), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        if stdin is not None:
            stdin.close()


def run(argv: Sequence[str], data: Optional[bytes] = None, cap: int = RULESET_MAX, timeout: float = 60) -> Output:
    """Run one command to its end (spawn, then run_bounded); OSError if it cannot be started."""
    return run_bounded([spawn(argv, data)], cap, timeout)[0]


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
    except OSError:
        pass


__all__ = ["RUN_DIR", "InputError", "PROC_MAX", "TC_MAX", "RULESET_MAX", "STDERR_MAX", "open_checked", "read_bytes", "read_text",
           "head", "kind_of", "run_bounded", "Output", "spawn", "run"]
