"""Integration tests on this machine's real kernel: network namespaces we create, and the host lab.

They run the modules through ansible itself (ad-hoc, local connection, JSON callback), as a user would.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from typing import Any, Dict, Iterator, List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_LAB = os.path.join(ROOT, "lab", "host", "host-lab")
# the collections path of ansible.cfg: ansible_collections/netdiag/packetloss in it links to ROOT (scripts/lib.sh)
COLLECTIONS = os.path.join(ROOT, ".ansible", "collections")


def said(out: str, text: str) -> bool:
    """Whether the play's output says ``text``: the default callback prints results as YAML, which folds a long string
    over lines wherever it is long (a report line folded at a space reads "kept 1 as\\n   intended")."""
    return " ".join(text.split()) in " ".join(out.split())


def sh(*argv: str, check: bool = True, ns: str | None = None) -> str:
    if ns:
        argv = ("ip", "netns", "exec", ns) + argv
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(argv), proc.returncode, proc.stdout))
    return proc.stdout


def run_module(module: str, check: bool = False, **args: Any) -> Dict[str, Any]:
    """Run netdiag.packetloss.<module> on localhost through ansible; return its result dict."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    cmd = ["ansible", "localhost", "-i", os.path.join(ROOT, "playbooks", "inventory", "localhost.yml"),
           "-m", "netdiag.packetloss." + module, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, check=False)
    # the default callback prints "localhost | SUCCESS => {...}" (or FAILED!) for an ad-hoc run
    head, sep, body = proc.stdout.partition(" => ")
    try:
        data = json.loads(body)
    except ValueError:
        raise AssertionError("ansible printed no JSON result (exit %d): %s %s" % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    if head.split("|")[-1].strip().startswith("FAILED"):
        data["failed"] = True
    return data


def play_task(inventory: str, host: str, module: str, check: bool = False, **args: Any) -> Dict[str, Any]:
    """Run one task (``module`` by its full name, with diff) on ``host`` as a playbook; return what it registered.

    A failed task is returned, not raised (``ignore_errors``): its ``failed`` and ``msg`` are the test's to check.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out, book = os.path.join(tmp, "out.json"), os.path.join(tmp, "play.yml")
        play = [{"hosts": host, "gather_facts": False, "tasks": [
            {"name": "run", module: args, "register": "r", "ignore_errors": True, "diff": True},
            {"name": "save", "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": out},
             "delegate_to": "localhost", "check_mode": False, "diff": False}]}]
        with open(book, "w") as handle:
            json.dump(play, handle)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_HOST_KEY_CHECKING="False")
        proc = subprocess.run(["ansible-playbook", "-i", inventory, book] + (["--check"] if check else []),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT, check=False)
        if not os.path.exists(out):
            raise AssertionError("the play did not run (exit %d): %s" % (proc.returncode, proc.stdout[-3000:]))
        with open(out) as handle:
            return json.load(handle)


def ok(result: Dict[str, Any]) -> Dict[str, Any]:
    """The result, after asserting the task did not fail."""
    assert not result.get("failed"), result.get("msg")
    return result


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh namespace with lo up and a veth pair to the host (10.231.x.1 host side, .2 inside)."""
    name = "ndt-" + uuid.uuid4().hex[:8]
    sh("ip", "netns", "add", name)
    host_if, ns_if = name[:8] + "h", name[:8] + "n"
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", name)
        octet = str(int(name[4:6], 16) % 250 + 1)
        sh("ip", "addr", "add", "10.231.%s.1/24" % octet, "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "addr", "add", "10.231.%s.2/24" % octet, "dev", ns_if, ns=name)
        sh("ip", "link", "set", ns_if, "up", ns=name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        yield name
    finally:
        sh("ip", "link", "del", host_if, check=False)
        sh("ip", "netns", "del", name, check=False)


@pytest.fixture(scope="session")
def host_lab() -> Iterator[str]:
    """The host lab's nginx container, started clean; faults are the test's to set. Stopped at the end when the
    session started it (one started by hand is left running, without faults)."""
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed: run scripts/test, which installs it")
    running = sh("docker", "inspect", "-f", "{{.State.Running}}", "nginx", check=False).strip() == "true"
    sh(HOST_LAB, "start")
    sh(HOST_LAB, "faults", "off")
    yield "nginx"
    sh(HOST_LAB, "faults", "off", check=False)
    if not running:
        sh(HOST_LAB, "stop", check=False)


def hping(ip: str, count: int = 20, port: int = 80) -> List[str]:
    return sh("hping3", "-c", str(count), "-S", "-p", str(port), "-i", "u100000", ip, check=False).splitlines()


def facts_of(result: Dict[str, Any]) -> Dict[str, Any]:
    assert not result.get("failed"), result.get("msg")
    return result["ansible_facts"]["packetloss"]
