"""The drill table (roles/inject/vars/drills.yml) for the tests: loading it, the a - b - c topology, rendering its
commands and running them in the namespaces of that topology, on this machine or in the VM lab (over SSH). One place
for what test_drills.py and test_drills_vm.py share."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.path.join(ROOT, "roles", "inject", "vars", "drills.yml")
HELPER = os.path.join(ROOT, "roles", "inject", "files", "netdiag_drill.py")
ABOVE_INFO = ("warning", "critical")


def load() -> List[Dict[str, Any]]:
    with open(TABLE) as f:
        return yaml.safe_load(f)["__packetloss_inject_drills"]


def by_id(drill_id: str) -> Dict[str, Any]:
    return next(d for d in load() if d["id"] == drill_id)


def render(text: str, values: Dict[str, Any]) -> str:
    return text.format(**values)


def in_ns(ns: Optional[str], argv: List[str]) -> List[str]:
    return (["ip", "netns", "exec", ns] if ns else []) + argv


class Local:
    """Runs commands on this machine."""

    def run(self, argv: List[str], check: bool = True, timeout: float = 120.0) -> Tuple[int, str]:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError("%s failed (%d): %s" % (argv, proc.returncode, proc.stdout))
        return proc.returncode, proc.stdout


class Remote(Local):
    """Runs commands as root in the VM lab over SSH, with the key and port of its inventory (lab/vm/vm-lab start)."""

    def __init__(self, inventory: str) -> None:
        with open(inventory) as f:
            text = f.read()
        host = dict(re.findall(r"(ansible_\w+)=(\S+)", text))
        self.ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=5",
                    "-o", "ServerAliveCountMax=6", "-o", "IdentitiesOnly=yes", "-i", host["ansible_ssh_private_key_file"],
                    "-p", host["ansible_port"], "%s@%s" % (host["ansible_user"], host["ansible_host"])]

    def run(self, argv: List[str], check: bool = True, timeout: float = 120.0) -> Tuple[int, str]:
        return self.script(" ".join(shlex.quote(a) for a in argv), check, timeout)

    def script(self, text: str, check: bool = True, timeout: float = 120.0, stdin: Optional[str] = None) -> Tuple[int, str]:
        """A shell script in the VM; ssh itself failing (255: a busy emulated VM slow to answer) is tried again."""
        for attempt in range(3):
            proc = subprocess.run(self.ssh + [text], input=stdin if stdin is not None else "", stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, check=False, timeout=timeout)
            if proc.returncode != 255:
                break
            time.sleep(2 + 3 * attempt)
        if check and proc.returncode != 0:
            raise AssertionError("in the VM: %s failed (%d): %s" % (text[:500], proc.returncode, proc.stdout[-3000:]))
        return proc.returncode, proc.stdout


LOCAL = Local()


def run_step(step: Dict[str, Any], names: Dict[str, Optional[str]], values: Dict[str, Any], check: bool = True,
             runner: Local = LOCAL) -> int:
    """One sh -c step of the table in its namespace (names maps a, b, c, host to netns names; None: this one)."""
    return runner.run(in_ns(names[step["ns"]], ["sh", "-c", render(step["sh"], values)]), check=check)[0]


def topology_plan(tag: str) -> Tuple[Dict[str, Optional[str]], Dict[str, Any], List[List[str]], List[List[str]]]:
    """Namespaces a - b - c joined by veth pairs, b routing between them; no default routes, no IPv6: their names,
    the placeholders (all but py, dir, life and b_mac, the caller's), the commands that make them and those that take
    them away."""
    k = int(tag[:2], 16) % 250 + 1
    names: Dict[str, Optional[str]] = {"a": "ndd%sa" % tag, "b": "ndd%sb" % tag, "c": "ndd%sc" % tag, "host": None}
    v: Dict[str, Any] = {"a_if": "d%sab" % tag, "b_if": "d%sba" % tag, "bc_if": "d%sbc" % tag, "c_if": "d%scb" % tag,
                         "a_ip": "10.232.%d.1" % k, "b_ip": "10.232.%d.2" % k, "absent_ip": "10.232.%d.99" % k,
                         "b_ip_c": "10.233.%d.2" % k, "c_ip": "10.233.%d.3" % k, "iface": "lo"}
    make: List[List[str]] = []
    for x in "abc":
        ns = str(names[x])
        make.append(["ip", "netns", "add", ns])
        for key in ("all", "default"):
            make.append(in_ns(ns, ["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key]))
        make.append(in_ns(ns, ["ip", "link", "set", "lo", "up"]))
    make.append(["ip", "-n", str(names["a"]), "link", "add", v["a_if"], "type", "veth", "peer", "name", v["b_if"], "netns", str(names["b"])])
    make.append(["ip", "-n", str(names["b"]), "link", "add", v["bc_if"], "type", "veth", "peer", "name", v["c_if"], "netns", str(names["c"])])
    for x, ifname, addr in (("a", v["a_if"], v["a_ip"]), ("b", v["b_if"], v["b_ip"]), ("b", v["bc_if"], v["b_ip_c"]),
                            ("c", v["c_if"], v["c_ip"])):
        make.append(in_ns(str(names[x]), ["ip", "addr", "add", addr + "/24", "dev", ifname]))
        make.append(in_ns(str(names[x]), ["ip", "link", "set", ifname, "up"]))
    make.append(in_ns(str(names["a"]), ["ip", "route", "add", v["c_ip"].rsplit(".", 1)[0] + ".0/24", "via", v["b_ip"]]))
    make.append(in_ns(str(names["c"]), ["ip", "route", "add", v["a_ip"].rsplit(".", 1)[0] + ".0/24", "via", v["b_ip_c"]]))
    make.append(in_ns(str(names["b"]), ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
    remove = [["ip", "netns", "del", str(names[x])] for x in "abc"]
    return names, v, make, remove


def topology(runner: Local, values: Dict[str, Any]) -> Iterator[Tuple[Dict[str, Optional[str]], Dict[str, Any]]]:
    """The a - b - c topology made with ``runner`` (the placeholders py, dir and life in ``values``), taken away
    after; a generator for a pytest fixture."""
    names, v, make, remove = topology_plan(uuid.uuid4().hex[:6])
    v.update(values)
    try:
        if isinstance(runner, Remote):  # one SSH round trip for all of it
            runner.script("set -e\n" + "\n".join(" ".join(shlex.quote(a) for a in argv) for argv in make))
        else:
            for argv in make:
                runner.run(argv)
        v["b_mac"] = runner.run(in_ns(names["b"], ["cat", "/sys/class/net/%s/address" % v["b_if"]]))[1].strip()
        yield names, v
    finally:
        if isinstance(runner, Remote):
            runner.script("; ".join(" ".join(shlex.quote(a) for a in argv) for argv in remove), check=False)
        else:
            for argv in remove:
                runner.run(argv, check=False)


class Traffic:
    """The drill's traffic: its helper commands started in order, each once it printed ready; killed on exit."""

    def __init__(self, drill: Dict[str, Any], names: Dict[str, Optional[str]], values: Dict[str, Any],
                 seconds: float = 90.0) -> None:
        self.procs: List[subprocess.Popen] = []
        self.entries = drill.get("traffic") or []
        self.names, self.values, self.seconds = names, values, seconds

    def __enter__(self) -> "Traffic":
        try:
            for t in self.entries:
                argv = [sys.executable, HELPER] + render(t["run"], self.values).split() + ["--for", str(self.seconds)]
                proc = subprocess.Popen(in_ns(self.names[t["ns"]], argv), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                self.procs.append(proc)
                line = proc.stdout.readline() if proc.stdout else ""
                if line.strip() != "ready":
                    raise AssertionError("traffic %r did not start: %s %s" % (t["run"], line, proc.stderr.read() if proc.stderr else ""))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: Any) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait(30)
            for stream in (p.stdout, p.stderr):
                if stream:
                    stream.close()


class RemoteTraffic:
    """The drill's traffic in the VM lab: each helper command started in the background (its output in a file of
    the drill's directory, values["dir"]) once the one before it said ready; all of them ended on exit."""

    def __init__(self, drill: Dict[str, Any], names: Dict[str, Optional[str]], values: Dict[str, Any], runner: Remote,
                 seconds: float = 240.0) -> None:
        self.entries = drill.get("traffic") or []
        self.names, self.values, self.seconds, self.runner = names, values, seconds, runner
        self.base = "%s/traffic.%s" % (values["dir"], uuid.uuid4().hex[:6])

    def __enter__(self) -> "RemoteTraffic":
        try:
            for i, t in enumerate(self.entries):
                argv = in_ns(self.names[t["ns"]], shlex.split(self.values["py"]) + render(t["run"], self.values).split()
                             + ["--for", str(self.seconds)])
                f = shlex.quote("%s.%d" % (self.base, i))
                rc, out = self.runner.script(
                    "nohup %s </dev/null >%s.out 2>&1 & echo $! >%s.pid\n"
                    "for i in $(seq 1 600); do grep -q '^ready' %s.out && exit 0; kill -0 $(cat %s.pid) 2>/dev/null || break;"
                    " sleep 0.1; done; cat %s.out; exit 1" % (" ".join(shlex.quote(a) for a in argv), f, f, f, f, f),
                    check=False)
                if rc != 0:
                    raise AssertionError("traffic %r did not start in the VM: %s" % (t["run"], out))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: Any) -> None:
        # SIGTERM, then SIGKILL for one still there after 10 s: nothing of the drill's traffic outlives it
        self.runner.script(
            "for p in %s.*.pid; do [ -f \"$p\" ] || continue; pid=$(cat \"$p\"); kill $pid 2>/dev/null;"
            " for i in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done; kill -9 $pid 2>/dev/null;"
            " rm -f \"$p\"; done; true" % shlex.quote(self.base), check=False)


def assert_drill_findings(drill: Dict[str, Any], target: str, findings: List[Dict[str, Any]]) -> None:
    """The drill's findings at warning or above on its target, and nothing else at warning or above on any target
    (its `may` ids aside)."""
    loud = above_info(iter(findings))
    found = set((f["id"], f["target"]) for f in loud)
    missing = [fid for fid in drill["expect"] if (fid, target) not in found]
    assert not missing, ("missing on %s: %s" % (target, missing), describe(loud))
    others = [f for f in loud if not ((f["id"] in drill["expect"] and f["target"] == target) or f["id"] in (drill.get("may") or []))]
    assert not others, ("findings beyond the drill's", describe(others))


def findings_of(reports: str) -> Iterator[Dict[str, Any]]:
    """Every finding of every target report under reports/<host>/."""
    for host in sorted(os.listdir(reports)):
        path = os.path.join(reports, host)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith(".json"):
                with open(os.path.join(path, name)) as f:
                    doc = json.load(f)
                yield from doc.get("findings", [])


def above_info(findings: Iterator[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [f for f in findings if f["severity"] in ABOVE_INFO]


def describe(findings: List[Dict[str, Any]]) -> List[str]:
    return ["%s %s on %s: %s" % (f["severity"], f["id"], f["target"], f["summary"]) for f in findings]
