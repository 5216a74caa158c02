"""The drill table (roles/inject/vars/drills.yml) for the tests: loading it, rendering its commands, and running them
in the namespaces of a drill's topology. One place for what test_drills.py and test_drills_vm.py share."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Optional

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


def run_step(step: Dict[str, Any], names: Dict[str, Optional[str]], values: Dict[str, Any], check: bool = True) -> int:
    """One sh -c step of the table in its namespace (names maps a, b, c, host to netns names; None: this one)."""
    cmd = in_ns(names[step["ns"]], ["sh", "-c", render(step["sh"], values)])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (cmd, proc.returncode, proc.stdout))
    return proc.returncode


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


def findings_of(reports: str) -> Iterator[Dict[str, Any]]:
    """Every finding of every target report under reports/<host>/."""
    import json
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
