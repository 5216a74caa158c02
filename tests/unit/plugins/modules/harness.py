# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module-level unit layer: a module's main() run in-process with its arguments, against a fake kernel boundary.

What is replaced, and nothing else (every decision in the modules and module_utils runs as it is):

- commands: ``fileio.spawn``, the one place the collection and remediation start a command. A faked command is a
  real child process (``sh`` printing the case's stdout and stderr and exiting with its code), so the bounded
  reader, exit codes and stderr handling run for real. A command the case does not list fails the test.
- netlink: ``socket.socket`` for AF_NETLINK only (links, qdiscs and nf_tables tables dumps; qdisc requests,
  acknowledged or refused with the kernel's extended ack, applied to the fake kernel's qdiscs so that the modules'
  verification reads the result). Every other socket is real; raw IP sockets can be denied (no CAP_NET_RAW).
- files: the paths a case lists (``fileio.read_bytes``, ``open``, ``os.path.exists/lexists/isdir``); defaults say
  the process has CAP_NET_ADMIN, no legacy iptables table is loaded and the remediation lock is in the test's tmp.
- Docker: a ``docker`` module of the case's containers (by default: the SDK present, no daemon answering).

``module_args`` is the one place that knows how each ansible-core passes arguments to a module in a test.
The module's exit is its real exit_json/fail_json: the result is the JSON it prints, as Ansible reads it.
"""
from __future__ import annotations

import builtins
import contextlib
import errno
import importlib
import importlib.machinery
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import types
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as _warnings

from ansible_collections.netdiag.packetloss.plugins.module_utils._common import fileio
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import common as _remediation
from ansible_collections.netdiag.packetloss.tests.unit.plugins.module_utils.unit_helpers import attribute, message

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures"))


# ---- arguments and the module's exit ------------------------------------------------------------------------------

def module_args(args: Dict[str, Any]) -> "contextlib.AbstractContextManager[None]":
    """Arguments for the next AnsibleModule: ansible-core >= 2.19 has patch_module_args (its JSON profile set too);
    older ones read basic._ANSIBLE_ARGS."""
    try:
        from ansible.module_utils.testing import patch_module_args  # pylint: disable=import-outside-toplevel
    except ImportError:
        return mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode("utf-8"))
    return patch_module_args(args)


def module_side() -> "contextlib.AbstractContextManager[Any]":
    """Since ansible-core 2.19 a warning goes to the controller's display once controller code is imported in the
    process (an action plugin, a filter): the module's run says it is not the controller, as on a target."""
    try:
        from ansible.module_utils import _internal  # pylint: disable=import-outside-toplevel
    except ImportError:
        return contextlib.nullcontext()
    if not hasattr(_internal, "is_controller"):
        return contextlib.nullcontext()
    return mock.patch.object(_internal, "is_controller", False)


@contextlib.contextmanager
def deadline(seconds: float = 60.0) -> Iterator[None]:
    """Fail a run that takes longer than ``seconds`` (a module that would sleep or wait for ever) instead of hanging."""
    def expired(_signum: int, _frame: Any) -> None:
        raise AssertionError("the module run took more than %d s" % seconds)
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_module(name: str, args: Dict[str, Any], capsys: Any, check_mode: bool = False, diff: bool = False) -> Dict[str, Any]:
    """Run plugins/modules/NAME.py's main() with ``args``; its result as Ansible would read it (rc in ``_rc``)."""
    main: Callable[[], None] = importlib.import_module("ansible_collections.netdiag.packetloss.plugins.modules." + name).main
    full = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    # warnings and deprecations collect in module-level containers (a list before 2.19, a dict since): one run each
    _warnings._global_warnings.clear()  # pylint: disable=protected-access
    _warnings._global_deprecations.clear()  # pylint: disable=protected-access
    capsys.readouterr()
    with module_args(full), module_side(), deadline():
        with pytest.raises(SystemExit) as exited:
            main()
    out = capsys.readouterr().out
    try:
        result = json.loads(out)
    except ValueError:
        raise AssertionError("%s printed no JSON result: %r" % (name, out[-2000:]))
    result["_rc"] = exited.value.code
    result["warnings"] = [warning_text(w) for w in result.get("warnings") or []]
    return result


def warning_text(warning: Any) -> str:
    """A warning as text: a string before ansible-core 2.19, a WarningSummary ({event: {msg}}) since."""
    if isinstance(warning, dict):
        event = warning.get("event") or (warning.get("details") or [{}])[0]
        return str(event.get("msg", warning))
    return str(warning)


# ---- action plugins ----------------------------------------------------------------------------------------------

ACTIONS = ("diagnose", "remediate", "report_files")


def run_action(name: str, args: Dict[str, Any], capsys: Any, system: "FakeSystem", check_mode: bool = False,
               task_vars: Optional[Dict[str, Any]] = None, diff: bool = False) -> Dict[str, Any]:
    """Run plugins/action/NAME.py in-process, as the task executor would, the result as it would record it (an
    AnsibleActionFail becomes failed and msg). The modules it sends to the target run in-process too (run_module,
    on the same fake system, with ``diff`` as --diff gives it); other modules answer with ``system.modules[name]``."""
    from ansible.errors import AnsibleAction  # pylint: disable=import-outside-toplevel
    plugin = importlib.import_module("ansible_collections.netdiag.packetloss.plugins.action." + name)
    task = mock.MagicMock()
    task.args = dict(args)
    task.async_val = 0
    task.check_mode = check_mode
    task.action = "netdiag.packetloss." + name
    action = plugin.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None,
                                 shared_loader_obj=None)
    action._load_name = task.action  # pylint: disable=protected-access  # what the plugin loader sets
    sent: List[str] = []

    def execute_module(module_name: str, module_args: Dict[str, Any], task_vars: Any = None, **_kw: Any) -> Dict[str, Any]:
        sent.append(module_name)
        prefix = "netdiag.packetloss."
        if module_name.startswith(prefix):
            out = run_module(module_name[len(prefix):], module_args, capsys, check_mode=check_mode, diff=diff)
            out.pop("_rc")
            return out
        if module_name not in system.modules:
            raise AssertionError("the action ran %s, which the case does not answer" % module_name)
        return dict(system.modules[module_name])

    action._execute_module = execute_module  # pylint: disable=protected-access
    try:
        with deadline():
            result = action.run(task_vars=dict(task_vars or {}))
    except AnsibleAction as exc:
        result = dict(exc.result, failed=True, msg=getattr(exc, "message", None) or str(exc))
    result["_modules"] = sent
    result["warnings"] = [warning_text(w) for w in result.get("warnings") or []]
    return json.loads(json.dumps(result))  # as the controller would hand it on


# ---- commands -----------------------------------------------------------------------------------------------------

def is_change(argv: List[str]) -> bool:
    """Whether a command changes the system (a restore, an nft script): none runs in check mode or on bad input."""
    return argv[0].endswith("-restore") or (argv[0] == "nft" and "-f" in argv)


class FakeCommands:
    """``commands`` of a case: ``[{argv, stdout | stdout_fixture, stderr, rc, missing}]``. Entries with the same
    argv answer successive runs in order, the last one every run after it."""

    def __init__(self, spec: List[Dict[str, Any]], tmp: str) -> None:
        self.spec = spec
        self.tmp = tmp
        self.calls: List[Dict[str, Any]] = []
        self.unexpected: List[List[str]] = []

    def spawn(self, argv: Any, data: Optional[bytes] = None) -> "subprocess.Popen[bytes]":
        argv = [str(a) for a in argv]
        n = len(self.calls)
        self.calls.append({"argv": argv, "stdin": data.decode("utf-8") if data is not None else None})
        same = [e for e in self.spec if [str(a) for a in e["argv"]] == argv]
        if not same:
            self.unexpected.append(argv)
            raise FileNotFoundError(errno.ENOENT, "not a command of this test case", argv[0])
        entry = same[min(sum(1 for c in self.calls[:-1] if c["argv"] == argv), len(same) - 1)]
        if entry.get("missing"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", argv[0])
        if "stdout_fixture" in entry:
            with open(os.path.join(FIXTURES, entry["stdout_fixture"]), "rb") as f:
                stdout = f.read()
        else:
            stdout = str(entry.get("stdout", "")).encode("utf-8")
        paths = []
        for kind, content in (("out", stdout), ("err", str(entry.get("stderr", "")).encode("utf-8"))):
            paths.append(os.path.join(self.tmp, "command-%d.%s" % (n, kind)))
            with open(paths[-1], "wb") as f:
                f.write(content)
        # pylint: disable-next=consider-using-with
        return subprocess.Popen(["/bin/sh", "-c", 'cat "$1"; cat "$2" >&2; exit "$3"', "sh", paths[0], paths[1],
                                 str(entry.get("rc", 0))], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def changes(self) -> List[List[str]]:
        return [c["argv"] for c in self.calls if is_change(c["argv"])]


# ---- netlink ------------------------------------------------------------------------------------------------------

TC_H_ROOT = 0xFFFFFFFF
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETLINK, RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 18, 36, 37, 38
NETLINK_ROUTE, NETLINK_NETFILTER = 0, 12
NFT_GETTABLE = (10 << 8) | 1
NFT_FAMILY_NUMBERS = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}
LINK_STATS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped",
              "multicast", "collisions", "rx_length_errors", "rx_over_errors", "rx_crc_errors", "rx_frame_errors",
              "rx_fifo_errors", "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
              "tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed")
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
UINT32_MAX = 0xFFFFFFFF


def handle_value(text: Any) -> int:
    """"root", "8001:", "1:10" or a number -> the kernel's u32."""
    if text in ("root", None):
        return TC_H_ROOT
    if isinstance(text, int):
        return text
    major, _sep, minor = str(text).partition(":")
    return (int(major or "0", 16) << 16) | int(minor or "0", 16)


def netem_qopt(o: Dict[str, Any]) -> bytes:
    """struct tc_netem_qopt (latency, limit, loss, gap, duplicate, jitter) from percentages; no attributes."""
    def u32(pct: float) -> int:
        return min(UINT32_MAX, int(round(pct * UINT32_MAX / 100.0)))
    return struct.pack("=IIIIII", 0, o.get("limit", 1000), u32(o.get("loss", 0)), o.get("gap", 0),
                       u32(o.get("duplicate", 0)), 0)


class FakeKernel:
    """The netlink side of a case (``netlink``): ``links`` ({name, ifindex, mtu, operstate, kind, stats}), ``qdiscs``
    ({interface, handle, parent, kind, netem | limit | options_hex, stats}), ``nft_tables`` ([[family, name]], or
    null: no nf_tables), ``refuse`` ({newqdisc | delqdisc: {errno, msg}})."""

    def __init__(self, spec: Optional[Dict[str, Any]]) -> None:
        spec = spec or {}
        self.links = spec.get("links", [{"name": "lo", "ifindex": 1, "operstate": "UNKNOWN"}])
        self.index = dict((l["name"], l["ifindex"]) for l in self.links)
        self.qdiscs: List[Dict[str, Any]] = []
        for q in spec.get("qdiscs", []):
            if "netem" in q:
                options = netem_qopt(q["netem"])
            elif "limit" in q:
                options = struct.pack("=I", q["limit"])
            else:
                options = bytes.fromhex(q.get("options_hex", ""))
            self.qdiscs.append({"ifindex": self.index[q["interface"]], "handle": handle_value(q["handle"]),
                                "parent": handle_value(q.get("parent", "root")), "kind": q["kind"], "options": options,
                                "stats": q.get("stats", {})})
        self.nft_tables = spec.get("nft_tables", [])
        self.refuse: Dict[str, Dict[str, Any]] = spec.get("refuse", {})
        self.requests: List[Dict[str, Any]] = []

    def socket(self, protocol: int) -> "FakeNetlinkSocket":
        if protocol == NETLINK_NETFILTER and self.nft_tables is None:
            raise OSError(errno.EPROTONOSUPPORT, os.strerror(errno.EPROTONOSUPPORT))
        return FakeNetlinkSocket(self, protocol)

    # replies
    def _link(self, link: Dict[str, Any], seq: int) -> bytes:
        stats = link.get("stats", {})
        attrs: List[List[Any]] = [[3, "s", link["name"]], [4, "I", [link.get("mtu", 1500)]],
                                  [16, "B", [OPERSTATES.index(link.get("operstate", "UP"))]],
                                  [23, "23Q", [stats.get(k, 0) for k in LINK_STATS]]]
        if link.get("kind"):
            attrs.append([18, "nested", [[1, "s", link["kind"]]]])
        if link.get("qdisc"):
            attrs.append([6, "s", link["qdisc"]])
        return message(16, struct.pack("=BxHiII", 0, 1, link["ifindex"], 0, 0), attrs, seq=seq)

    def _qdisc(self, q: Dict[str, Any], seq: int) -> bytes:
        s = q["stats"]
        attrs: List[List[Any]] = [[1, "s", q["kind"]]]
        if q["options"]:
            attrs.append([2, "bytes", q["options"]])
        attrs.append([7, "nested", [[1, "QI4x", [s.get("bytes", 0), s.get("packets", 0)]],
                                    [3, "IIIII", [s.get("qlen", 0), s.get("backlog_bytes", 0), s.get("drops", 0),
                                                  s.get("requeues", 0), s.get("overlimits", 0)]]]])
        return message(36, struct.pack("=B3xiIII", 0, q["ifindex"], q["handle"], q["parent"], 1), attrs, seq=seq)

    def _table(self, family: str, name: str, seq: int) -> bytes:
        return message(NFT_GETTABLE, struct.pack("=BBH", NFT_FAMILY_NUMBERS[family], 0, 0), [[1, "s", name]], seq=seq)

    @staticmethod
    def _ack(request: bytes, code: int = 0, text: str = "") -> bytes:
        _length, _type, _flags, seq, pid = struct.unpack_from("=IHHII", request)
        flags = 0x100  # NLM_F_CAPPED: the request's header only
        body = struct.pack("=i", -code) + request[:16]
        if text:
            flags |= 0x200  # NLM_F_ACK_TLVS
            body += attribute(1, "s", text)  # NLMSGERR_ATTR_MSG
        return struct.pack("=IHHII", 16 + len(body), NLMSG_ERROR, flags, seq, pid) + body

    def answer(self, protocol: int, request: bytes) -> List[bytes]:
        _length, msg_type, _flags, seq, _pid = struct.unpack_from("=IHHII", request)
        done = struct.pack("=IHHIIi", 20, NLMSG_DONE, 2, seq, 0, 0)
        if protocol == NETLINK_NETFILTER and msg_type == NFT_GETTABLE:
            return [b"".join(self._table(f, n, seq) for f, n in self.nft_tables) + done]
        if protocol == NETLINK_ROUTE and msg_type == RTM_GETLINK:
            return [b"".join(self._link(l, seq) for l in self.links) + done]
        if protocol == NETLINK_ROUTE and msg_type == RTM_GETQDISC:
            return [b"".join(self._qdisc(q, seq) for q in self.qdiscs) + done]
        if protocol == NETLINK_ROUTE and msg_type in (RTM_NEWQDISC, RTM_DELQDISC):
            return [self._change(msg_type, request)]
        return [self._ack(request, errno.EOPNOTSUPP)]

    def _change(self, msg_type: int, request: bytes) -> bytes:
        _family, ifindex, handle, parent, _info = struct.unpack_from("=B3xiIII", request, 16)
        kind, options, pos = None, b"", 36
        while pos + 4 <= len(request):
            alen, akind = struct.unpack_from("=HH", request, pos)
            if alen < 4:
                break
            if akind == 1:
                kind = request[pos + 4:pos + alen].split(b"\0", 1)[0].decode()
            elif akind == 2:
                options = request[pos + 4:pos + alen]
            pos += (alen + 3) & ~3
        name = "newqdisc" if msg_type == RTM_NEWQDISC else "delqdisc"
        self.requests.append({"request": name, "ifindex": ifindex, "handle": "%x:%x" % (handle >> 16, handle & 0xFFFF),
                              "parent": "root" if parent == TC_H_ROOT else "%x:%x" % (parent >> 16, parent & 0xFFFF),
                              "kind": kind})
        refused = self.refuse.get(name)
        if refused:
            return self._ack(request, refused["errno"], refused.get("msg", ""))
        if ifindex not in self.index.values():
            return self._ack(request, errno.ENODEV, "Cannot find device")
        if parent == TC_H_ROOT:
            old = [q for q in self.qdiscs if q["ifindex"] == ifindex and q["parent"] == TC_H_ROOT]
            for q in old:
                self._remove(q)
            if msg_type == RTM_NEWQDISC:
                self.qdiscs.append({"ifindex": ifindex, "handle": handle or 0x80010000, "parent": TC_H_ROOT,
                                    "kind": kind, "options": options, "stats": {}})
            else:
                self.qdiscs.append({"ifindex": ifindex, "handle": 0, "parent": TC_H_ROOT, "kind": "noqueue",
                                    "options": b"", "stats": {}})
        else:
            for q in [q for q in self.qdiscs if q["ifindex"] == ifindex and q["parent"] == parent]:
                self._remove(q)
            if msg_type == RTM_NEWQDISC:
                self.qdiscs.append({"ifindex": ifindex, "handle": handle or 0x80020000, "parent": parent, "kind": kind,
                                    "options": options, "stats": {}})
        return self._ack(request)

    def _remove(self, gone: Dict[str, Any]) -> None:
        self.qdiscs.remove(gone)
        for q in [q for q in self.qdiscs if q["ifindex"] == gone["ifindex"] and q["parent"] >> 16 == gone["handle"] >> 16
                  and q["parent"] != TC_H_ROOT]:
            self._remove(q)

    def changes(self) -> List[Dict[str, Any]]:
        return list(self.requests)


class FakeNetlinkSocket:
    """An AF_NETLINK socket answered by a FakeKernel: each send() queues the kernel's answer for recv()."""

    def __init__(self, kernel: FakeKernel, protocol: int) -> None:
        self.kernel = kernel
        self.protocol = protocol
        self.queue: List[bytes] = []

    def send(self, data: bytes, flags: int = 0) -> int:
        self.queue.extend(self.kernel.answer(self.protocol, bytes(data)))
        return len(data)

    sendall = send

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.queue:
            raise socket.timeout("the fake kernel has nothing more to say")
        return self.queue.pop(0)

    def settimeout(self, value: Optional[float]) -> None:
        pass

    def setsockopt(self, *args: Any) -> None:
        pass

    def bind(self, address: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "FakeNetlinkSocket":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- files --------------------------------------------------------------------------------------------------------

DEFAULT_FILES: Dict[str, Any] = {
    "/proc/self/status": "Name:\tpython3\nCapEff:\t000001ffffffffff\n",  # CAP_NET_ADMIN, as root has it
    "/proc/net/ip_tables_names": None,    # no legacy iptables table
    "/proc/net/ip6_tables_names": None,
    "/proc/sys/net/core/default_qdisc": "fq_codel\n",
    "/sys/module/sch_netem": {"dir": True},
    "/var/run/docker.sock": None,
}


class FakeFiles:
    """``files`` of a case: path -> text, null (does not exist) or {dir: true}; other paths are the real ones."""

    def __init__(self, spec: Dict[str, Any]) -> None:
        self.map = dict(DEFAULT_FILES, **(spec or {}))

    def install(self, monkeypatch: Any) -> None:
        real_read, real_open = fileio.read_bytes, builtins.open
        real = dict((name, getattr(os.path, name)) for name in ("exists", "lexists", "isdir"))

        def read_bytes(path: str, cap: int) -> bytes:
            if path not in self.map:
                return real_read(path, cap)
            value = self.map[path]
            if value is None:
                raise fileio.InputError(path, "does not exist")
            if isinstance(value, dict):
                raise fileio.InputError(path, "is a directory, not a regular file: refused")
            return value.encode("utf-8")

        def fake_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if isinstance(path, str) and path in self.map and "r" in mode and "+" not in mode:
                value = self.map[path]
                if value is None:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
                if isinstance(value, dict):
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
                return io.BytesIO(value.encode("utf-8")) if "b" in mode else io.StringIO(value)
            return real_open(path, mode, *args, **kwargs)

        def checker(name: str) -> Callable[[Any], bool]:
            def check(path: Any) -> bool:
                if isinstance(path, str) and path in self.map:
                    value = self.map[path]
                    return value is not None and (name != "isdir" or isinstance(value, dict))
                return real[name](path)
            return check

        monkeypatch.setattr(fileio, "read_bytes", read_bytes)
        monkeypatch.setattr(builtins, "open", fake_open)
        for name in real:
            monkeypatch.setattr(os.path, name, checker(name))


# ---- Docker -------------------------------------------------------------------------------------------------------

def fake_docker(spec: Any) -> Optional[types.ModuleType]:
    """A ``docker`` module: ``spec`` null means the SDK is not installed; ``{daemon: false}`` (the default) a daemon
    that does not answer; ``{containers: {name: {pid, running}}}`` a daemon with those containers."""
    if spec is None:
        return None
    module = types.ModuleType("docker")
    module.__spec__ = importlib.machinery.ModuleSpec("docker", None)
    containers = spec.get("containers", {})

    class Container:
        def __init__(self, name: str, row: Dict[str, Any]) -> None:
            self.name = name
            self.attrs = {"State": {"Pid": row.get("pid", 0), "Running": row.get("running", True)}}

    class Containers:
        def get(self, ref: str) -> Container:
            if ref not in containers:
                raise LookupError("404 Client Error: Not Found (No such container: %s)" % ref)
            return Container(ref, containers[ref])

        def list(self) -> List[Container]:
            return [Container(n, r) for n, r in containers.items() if r.get("running", True)]

    class Client:
        containers = Containers()

        def ping(self) -> bool:
            if not spec.get("daemon", "containers" in spec):
                raise ConnectionError("Error while fetching server API version: connection refused (fake)")
            return True

    module.from_env = Client  # type: ignore[attr-defined]
    return module


# ---- sockets ------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def sockets(kernel: FakeKernel, raw: str = "allowed") -> Iterator[None]:
    """socket.socket for the duration: AF_NETLINK answered by ``kernel``; raw IP sockets refused with EPERM when
    ``raw`` is "denied"; everything else real."""
    real = socket.socket

    class Socket(real):  # type: ignore[misc,valid-type]
        def __new__(cls, family: int = -1, type: int = -1, proto: int = -1, fileno: Optional[int] = None) -> Any:  # pylint: disable=redefined-builtin
            if family == socket.AF_NETLINK:
                return kernel.socket(proto if proto != -1 else 0)
            if raw == "denied" and type == socket.SOCK_RAW:
                raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
            return real.__new__(cls, family, type, proto, fileno)

    with mock.patch.object(socket, "socket", Socket):
        yield


# ---- a whole fake system ------------------------------------------------------------------------------------------

class FakeSystem:
    """Everything a case's ``system`` says the module sees, installed for one test."""

    def __init__(self, spec: Optional[Dict[str, Any]], tmp: str) -> None:
        spec = spec or {}
        self.commands = FakeCommands(spec.get("commands", []), tmp)
        self.kernel = FakeKernel(spec.get("netlink"))
        self.files = FakeFiles(spec.get("files", {}))
        self.docker = fake_docker(spec.get("docker", {}))
        self.raw = spec.get("raw_sockets", "allowed")
        self.modules: Dict[str, Dict[str, Any]] = spec.get("modules", {})
        self.tmp = tmp

    @contextlib.contextmanager
    def installed(self, monkeypatch: Any) -> Iterator["FakeSystem"]:
        monkeypatch.setattr(fileio, "spawn", self.commands.spawn)
        monkeypatch.setattr(_remediation, "LOCK_DIR", os.path.join(self.tmp, "locks"))
        monkeypatch.setitem(sys.modules, "docker", self.docker)
        self.files.install(monkeypatch)
        with sockets(self.kernel, self.raw):
            yield self

    def changes(self) -> List[Any]:
        """What the module changed: the commands that change rulesets, then the qdisc requests."""
        return self.commands.changes() + self.kernel.changes()


def tmp_tree(root: str, files: Dict[str, Any]) -> None:
    """Real files under ``root`` (a copied /proc tree, say): rel path -> text, or {fifo: true}, or {dir: true}."""
    for rel, value in (files or {}).items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(value, dict) and value.get("fifo"):
            os.mkfifo(path)
        elif isinstance(value, dict) and value.get("dir"):
            os.makedirs(path, exist_ok=True)
        else:
            with open(path, "w") as f:
                f.write(value)


def substitute(value: Any, names: Dict[str, Any]) -> Any:
    """``{fixtures}``, ``{tmp}``, ``{open_port}``, ... in the strings of a case's arguments; a string that is only
    ``{name}`` becomes the value itself (an int port stays an int)."""
    if isinstance(value, dict):
        return dict((k, substitute(v, names)) for k, v in value.items())
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, str):
        for key, repl in names.items():
            token = "{%s}" % key
            if value == token:
                return repl
            value = value.replace(token, str(repl))
    return value


Listeners = Tuple[socket.socket, socket.socket]


@contextlib.contextmanager
def loopback_ports() -> Iterator[Dict[str, int]]:
    """``open_port`` (a listening TCP socket on 127.0.0.1) and ``closed_port`` (bound, not listening: a SYN to it
    gets a RST), held for one test."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        closed.bind(("127.0.0.1", 0))
        yield {"open_port": listener.getsockname()[1], "closed_port": closed.getsockname()[1]}
    finally:
        listener.close()
        closed.close()
