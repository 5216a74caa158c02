# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every remediation module shares: plans, check mode, backups, diffs, commands, input checks.

A remediation module builds a Plan inside the target's network namespace, by reading only. Then
``execute`` decides: in check mode the plan is reported and nothing else happens; otherwise the
backup is written (files of mode 0600) before the first change, the plan's steps run in order, and
the plan's own verification re-reads the live state. The result says exactly what was (or would
be) removed and added, and carries the diff when Ansible asks for one.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import datetime
import os
import re
import fcntl
import shlex
import stat
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._common import fileio as _fileio
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import Target, TargetError, entered, resolve

COMMAND_TIMEOUT = 120
DEFAULT_BACKUP_DIR = "/var/backups/netdiag-packetloss"

BACKUP_ARGS: Dict[str, Any] = dict(backup=dict(type="bool", default=False),
                                   backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR))

# Names that go into commands, restore scripts or netlink requests: no white space, no leading '-' or '!'.
NAME_RULES: Dict[str, Tuple["re.Pattern[str]", str]] = {
    "table": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"),
              "1 to 64 letters, digits, '_', '.' or '-', not starting with '.' or '-'"),
    "chain": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,63}$"),
              "1 to 64 letters, digits, '_', '.', ':', '+' or '-', not starting with one of '.:+-'"),
    "interface": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+@-]{0,14}$"),
                  "1 to 15 letters, digits, '_', '.', '+', '@' or '-', not starting with one of '.+@-'"),
}


class RemediationError(Exception):
    """A remediation that cannot be planned or applied; the message says why."""


def check_name(kind: str, value: Optional[str]) -> Optional[str]:
    """``value`` if it is a valid ``kind`` (table, chain, interface) name or None, else a RemediationError."""
    if value is None:
        return None
    pattern, rule = NAME_RULES[kind]
    if not isinstance(value, str) or not pattern.match(value):
        raise RemediationError("invalid %s name %r: %s" % (kind, value, rule))
    return value


# ---- commands (never through a shell) ----------------------------------------------------------

def run(argv: List[str], data: Optional[str] = None, timeout: int = COMMAND_TIMEOUT) -> str:
    """Run ``argv`` (no shell), feeding ``data`` on stdin; its stdout, or a RemediationError with its stderr."""
    try:
        res = _fileio.run(argv, data.encode("utf-8") if data is not None else None, _fileio.RULESET_MAX, timeout)
    except FileNotFoundError:
        raise RemediationError("%s is not installed" % argv[0])
    except OSError as exc:
        raise RemediationError("%s cannot be started: %s" % (argv[0], exc.strerror))
    if res.problem is not None or res.out is None:
        raise RemediationError("%s %s" % (" ".join(argv), res.problem))
    out = res.out.decode("utf-8", "replace")
    if res.returncode != 0:
        err = res.err.decode("utf-8", "replace").strip() or out.strip()
        raise RemediationError("%s failed (exit %d): %s" % (" ".join(argv), res.returncode, err[-2000:]))
    return out


def shell_prefix(target: Target) -> str:
    """How a root shell on the target's host reaches the target's namespace (for restore commands)."""
    if target.kind == "netns":
        if target.name.startswith("/"):
            return "nsenter --net=%s " % shlex.quote(target.name)
        return "ip netns exec %s " % shlex.quote(target.name)
    if target.kind == "container":
        return "nsenter --net=/proc/$(docker inspect -f '{{.State.Pid}}' %s)/ns/net " % shlex.quote(target.name)
    return ""


# ---- backups --------------------------------------------------------------------------------------

class BackupPart:
    """One backup file: its content, what it holds, and the command restoring it (``{path}`` = the file)."""

    def __init__(self, suffix: str, content: str, restore: str, what: Dict[str, Any], refuse: Optional[str] = None) -> None:
        self.suffix = suffix
        self.content = content
        self.restore = restore
        self.what = what
        self.refuse = refuse  # why no backup that restores this can be written (then nothing is written or changed)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "x"


def backup_directory(directory: str) -> None:
    """Create ``directory`` with mode 0700, or check that an existing one has mode 0700 and is ours.

    Backups hold whole rulesets: a directory others can read or write is refused (RemediationError), never chmod-ed.
    """
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.stat(directory)
    except OSError as exc:
        raise RemediationError("cannot create the backup directory %s: %s" % (directory, exc.strerror))
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISDIR(st.st_mode):
        raise RemediationError("backup_dir %s is not a directory; nothing was changed" % directory)
    if st.st_uid != os.geteuid() or mode & 0o077:
        raise RemediationError("backup_dir %s has mode %04o and owner uid %d: backups go only to a directory of mode 0700 "
                               "owned by uid %d (chmod 700 it, or choose another); nothing was changed"
                               % (directory, mode, st.st_uid, os.geteuid()))


def _write_new(directory: str, base: str, content: str) -> str:
    """Write ``content`` to a new file ``base`` (or ``base.N``), complete or not at all: a temporary file of mode 0600
    is written and synced, then linked to its name (never over an existing file) and removed."""
    fd, tmp = tempfile.mkstemp(prefix=".netdiag-", suffix=".tmp", dir=directory)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask said
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                fd = -1
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise RemediationError("cannot write the backup %s: %s" % (base, exc.strerror))
        path = base
        for n in range(1, 1000):
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                path = "%s.%d" % (base, n)
            except OSError as exc:
                raise RemediationError("cannot write the backup %s: %s" % (path, exc.strerror))
        raise RemediationError("no free backup file name for %s" % base)
    finally:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass


def write_backup(directory: str, module_name: str, target: Target, parts: List[BackupPart],
                 now: Optional[datetime.datetime] = None) -> List[Dict[str, Any]]:
    """Write each part to its own new file (mode 0600) in ``directory`` (mode 0700, see backup_directory).

    Returns, per file, ``what`` plus ``path`` and ``restore`` (the shell command that puts it back).
    An existing file is never overwritten: the name gets a counter. Each file is complete or absent; when one
    cannot be written (a full disk), those written before are removed too and a RemediationError says why.
    """
    if not parts:
        return []
    for part in parts:
        if part.refuse:
            raise RemediationError("no backup: %s; nothing was changed" % part.refuse)
    backup_directory(directory)
    stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y%m%dT%H%M%S.%fZ")
    written: List[Dict[str, Any]] = []
    try:
        for part in parts:
            base = os.path.join(directory, "%s-%s-%s.%s" % (module_name, _slug(target.label), stamp, _slug(part.suffix)))
            path = _write_new(directory, base, part.content)
            entry = dict(part.what)
            entry.update(path=path, restore=shell_prefix(target) + part.restore.format(path=shlex.quote(path)))
            written.append(entry)
        _fsync_dir(directory)
    except RemediationError as exc:
        for entry in written:
            try:
                os.unlink(entry["path"])
            except OSError:
                pass
        raise RemediationError("%s; no backup was kept and nothing was changed" % exc)
    return written


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- one remediation per target at a time ---------------------------------------------------------

LOCK_DIR = _fileio.RUN_DIR
LOCK_TIMEOUT = 300.0


class TargetLock:
    """An exclusive flock per network namespace (by its inode), held while a module reads, changes and verifies it.

    Taken inside the target's namespace, so a netns name, its path and a container in it share one lock. ``waited``
    is how long another holder kept this one waiting (0.0 if the lock was free).
    """

    def __init__(self, timeout: float = LOCK_TIMEOUT, directory: Optional[str] = None) -> None:
        self.timeout = timeout
        self.directory = directory or LOCK_DIR  # read when the lock is made (the unit tests point it elsewhere)
        self.fd = -1
        self.waited = 0.0
        self.path = ""

    def __enter__(self) -> "TargetLock":
        try:
            ns = os.stat("/proc/thread-self/ns/net")
        except OSError:
            ns = os.stat("/proc/self/ns/net")
        self.path = os.path.join(self.directory, "netns-%d-%d.lock" % (ns.st_dev, ns.st_ino))
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise RemediationError("cannot take the remediation lock %s: %s%s" % (
                self.path, exc.strerror, " (not root: remediation needs root)" if os.geteuid() else ""))
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                self.waited = time.monotonic() - started
                if self.waited > self.timeout:
                    os.close(self.fd)
                    self.fd = -1
                    raise RemediationError("another remediation of this target still holds its lock %s after %d s; "
                                           "nothing was changed" % (self.path, self.timeout))
                time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the flock
            self.fd = -1


# ---- plans -----------------------------------------------------------------------------------------

class Step:
    """One change: ``apply`` makes it, ``describe`` names it in the result and in error messages."""

    def __init__(self, describe: str, apply: Callable[[], None], keys: Optional[Set[Tuple[Any, ...]]] = None) -> None:
        self.describe = describe
        self.apply = apply
        self.keys = keys or set()  # what it changes, in the plan's own terms (random_drop: family, backend, table)


class Plan:
    """What a remediation module would do on one target, built by reading only.

    ``verify`` (set by the builder) runs after the steps, re-reads the live state, may replace the
    predicted ``diffs`` with what is really there now, and returns the problems it found.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.removed: List[Dict[str, Any]] = []
        self.added: List[Dict[str, Any]] = []
        self.steps: List[Step] = []
        self.diffs: List[Dict[str, str]] = []
        self.backup: List[BackupPart] = []
        self.warnings: List[str] = []
        self.extra: Dict[str, Any] = {}
        self.verify: Optional[Callable[[], List[str]]] = None

    @property
    def changed(self) -> bool:
        return bool(self.steps)


def diff_entry(header: str, before: str, after: str) -> Dict[str, str]:
    """One element of Ansible's diff list; texts end with a newline so that diff output stays tidy."""
    def nl(text: str) -> str:
        return text if not text or text.endswith("\n") else text + "\n"
    return {"before_header": "%s (before)" % header, "after_header": "%s (after)" % header,
            "before": nl(before), "after": nl(after)}


def execute(module: Any, module_name: str, build: Callable[[Target], Plan], summary: Callable[[Plan, bool], str]) -> None:
    """Resolve the target, plan, back up, apply, verify, exit: the one body behind every remediation module.

    ``module`` is the AnsibleModule; its ``netns``/``container``, ``backup`` and ``backup_dir`` parameters
    are read here. A RemediationError fails the module with its message and, when something had
    already been changed, the steps applied so far and the backup files.
    """
    p = module.params
    applied: List[str] = []
    backups: List[Dict[str, Any]] = []
    try:
        try:
            target = resolve(p.get("netns"), p.get("container"))
        except TargetError as exc:
            raise RemediationError(str(exc))
        with entered(target), TargetLock() as lock:
            plan = build(target)
            if plan.changed and not module.check_mode:
                if p.get("backup"):
                    backups = write_backup(p.get("backup_dir") or DEFAULT_BACKUP_DIR, module_name, target, plan.backup)
                for step in plan.steps:
                    step.apply()
                    applied.append(step.describe)
                problems = plan.verify() if plan.verify else []
                if problems:
                    raise RemediationError("verification after the change failed: %s" % "; ".join(problems))
    except (RemediationError, TargetError) as exc:
        extra: Dict[str, Any] = {}
        if applied or backups:
            extra = dict(changed=bool(applied), applied=applied, backup_files=backups)
        module.fail_json(msg=str(exc), **extra)
        return
    for warning in plan.warnings:
        module.warn(warning)
    msg = summary(plan, bool(module.check_mode))
    if lock.waited and not plan.changed:
        msg += (" (another remediation of this target held its lock for %.1f s before this run read it: it did the "
                "work, if there was any)" % lock.waited)
    result: Dict[str, Any] = dict(
        changed=plan.changed,
        msg=msg,
        target=target.as_dict(),
        removed=plan.removed,
        added=plan.added,
        steps=[s.describe for s in plan.steps],
        backup_files=backups,
    )
    if backups:
        result["backup_file"] = backups[0]["path"]
    result.update(plan.extra)
    if getattr(module, "_diff", False):
        result["diff"] = plan.diffs
    module.exit_json(**result)
