# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a module works: the host, a named or path-given network namespace, or a Docker container.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import importlib.util
import os
import re
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.fileio import InputError, open_checked

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703  # ioctl on a namespace file (Linux >= 4.11): its CLONE_NEW* type
NETNS_RUN_DIR = "/run/netns"
_NS_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CONTAINER_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# The options that choose the target, in every module's argument_spec (documented by the target doc fragment).
TARGET_ARGS: Dict[str, Any] = dict(netns=dict(type="str"), container=dict(type="str"))


class TargetError(Exception):
    """A namespace or container could not be resolved or entered; the message names it."""


class Target:
    """One place to collect from or change: ``host``, ``netns:NAME`` or ``container:NAME``."""

    def __init__(self, kind: str, name: str, ns_path: Optional[str] = None, pid: Optional[int] = None) -> None:
        self.kind = kind
        self.name = name
        self.ns_path = ns_path
        self.pid = pid

    @property
    def label(self) -> str:
        return "host" if self.kind == "host" else "%s:%s" % (self.kind, self.name)

    def as_dict(self) -> Dict[str, object]:
        return {"kind": self.kind, "name": self.name, "label": self.label, "netns_path": self.ns_path, "pid": self.pid}


HOST = Target("host", "host")
LABEL_KINDS = ("host", "netns", "container")


def parse_label(label: object) -> Tuple[str, str]:
    """A target label (``host``, ``netns:NAME`` or ``container:NAME``, as Target.label writes it) as (kind, name);
    ValueError naming the label for anything else. The one parser of target labels."""
    if label == "host":
        return "host", "host"
    kind, sep, name = str(label).partition(":") if isinstance(label, str) else ("", "", "")
    if not sep or kind not in LABEL_KINDS[1:] or not name:
        raise ValueError("invalid target label %r: use host, netns:NAME or container:NAME" % (label,))
    return kind, name


def netns_target(ref: str) -> Target:
    """Resolve ``ref`` (a name in /run/netns or an absolute path to a namespace file)."""
    if ref.startswith("/"):
        path = os.path.normpath(ref)
        name = path
    else:
        if not _NS_NAME.match(ref):
            raise TargetError("invalid network namespace name %r: use letters, digits, '.', '_' or '-', or an absolute path" % ref)
        path = os.path.join(NETNS_RUN_DIR, ref)
        name = ref
    if not os.path.lexists(path):
        raise TargetError("network namespace %r not found (no file %s)" % (ref, path))
    os.close(open_netns(path, "netns:%s" % name))
    return Target("netns", name, path)


def _has_ns_get_nstype() -> bool:
    match = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return match is None or (int(match.group(1)), int(match.group(2))) >= (4, 11)


def open_netns(path: str, label: str) -> int:
    """An fd of the network namespace file ``path``, opened without blocking and checked before use.

    A FIFO, device, directory or socket (anything but the regular-looking file of nsfs) is refused without a
    blocking open; a file that is not a namespace (for example /run/netns/NAME left unmounted), or a namespace of
    another type, is refused too. The message names the path and what it is. The caller closes the fd.
    """
    try:
        fd, _st = open_checked(path)
    except InputError as exc:
        raise TargetError("cannot use %s as the network namespace of %s: %s" % (path, label, exc.reason))
    try:
        try:
            nstype = fcntl.ioctl(fd, NS_GET_NSTYPE)
        except OSError as exc:
            if exc.errno in (errno.ENOTTY, errno.EINVAL):
                if not _has_ns_get_nstype():
                    return fd  # a kernel older than 4.11: setns(2) itself refuses a file that is not a namespace
                raise TargetError("%s is not a namespace file (a plain file: no namespace is mounted there), "
                                  "so it cannot be the network namespace of %s" % (path, label))
            raise TargetError("cannot use %s as the network namespace of %s: %s" % (path, label, exc.strerror))
        if nstype != CLONE_NEWNET:
            raise TargetError("%s is a namespace of another type (0x%x), not a network namespace, so it cannot be "
                              "the network namespace of %s" % (path, nstype, label))
    except BaseException:
        os.close(fd)
        raise
    return fd


DOCKER_SOCKET = "/var/run/docker.sock"


def _docker_host() -> bool:
    return os.path.exists(DOCKER_SOCKET) or bool(os.environ.get("DOCKER_HOST"))


def docker_sdk_state() -> str:
    """``present`` when the Docker SDK for Python can be imported; otherwise ``missing`` on a Docker host (its
    socket exists, or DOCKER_HOST is set) and ``not_needed`` elsewhere."""
    if importlib.util.find_spec("docker") is not None:
        return "present"
    return "missing" if _docker_host() else "not_needed"


def _docker_client():
    try:
        import docker  # type: ignore[import-not-found]
    except ImportError:
        raise TargetError("the Docker SDK for Python (python package 'docker', Debian 'python3-docker') is required "
                          "on the target to resolve containers")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types for 'daemon not there'
        raise TargetError("cannot reach the Docker daemon: %s" % exc)
    return client


def container_target(ref: str, client=None) -> Target:
    """Resolve a container name or id to its init process's network namespace."""
    if not _CONTAINER_REF.match(ref):
        raise TargetError("invalid container name or id %r" % ref)
    client = client or _docker_client()
    try:
        ctr = client.containers.get(ref)
    except Exception as exc:
        raise TargetError("container %r not found: %s" % (ref, exc))
    return _from_container(ctr)


def _from_container(ctr) -> Target:
    state = ctr.attrs.get("State", {})
    pid = int(state.get("Pid") or 0)
    name = ctr.name
    if not state.get("Running") or pid <= 0:
        raise TargetError("container %r is not running" % name)
    return Target("container", name, "/proc/%d/ns/net" % pid, pid)


def running_containers() -> List[Target]:
    """Every running container on this host, none on a host without Docker.

    Raises TargetError on a Docker host whose containers cannot be listed (no Docker SDK, daemon not reachable).
    """
    try:
        client = _docker_client()
    except TargetError:
        if _docker_host():
            raise
        return []
    out = []
    for ctr in client.containers.list():
        try:
            out.append(_from_container(ctr))
        except TargetError:
            continue  # stopped between list and inspect
    return sorted(out, key=lambda t: t.name)


def resolve(netns: Optional[str] = None, container: Optional[str] = None) -> Target:
    if netns and container:
        raise TargetError("netns and container are mutually exclusive")
    if netns:
        return netns_target(netns)
    if container:
        return container_target(container)
    return HOST


_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def entered(target: Target) -> Iterator[Target]:
    """Run the body inside ``target``'s network namespace and come back after it.

    setns(2) acts on the calling thread; modules are single-threaded, and children
    (iptables-save, nft) inherit the namespace. /proc/self/net and /proc/sys/net
    then show the entered namespace.
    """
    if target.ns_path is None:
        yield target
        return
    try:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    except OSError:
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        fd = open_netns(target.ns_path, target.label)
        try:
            try:
                _setns(fd)
            except OSError as exc:
                hint = " (needs root or CAP_SYS_ADMIN)" if exc.errno == errno.EPERM else ""
                raise TargetError("cannot enter the namespace of %s: %s%s" % (target.label, exc.strerror, hint))
        finally:
            os.close(fd)
        try:
            yield target
        finally:
            _setns(own)
    finally:
        os.close(own)
