"""Issue 14, the netfilter part, on this machine's kernel in namespaces we create: counters and policies kept on
both backends, a random drop hidden in an incompatible iptables-nft table, unreadable rulesets fail closed, a
comment holding newlines, concurrent runs on one namespace, and backups that are complete or absent.

The namespaces here have no interface up (not even lo): no packet moves a counter, so counters compare exactly.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import uuid
from typing import Any, Dict, Iterator, List, Optional

import pytest

from conftest import COLLECTIONS, ROOT, ok, run_module, sh

PYTHON = "/work/main/.venv/bin/python"


@pytest.fixture
def quiet_ns() -> Iterator[str]:
    name = "nd-netfilter-" + uuid.uuid4().hex[:8]
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def ns_run(ns: str, *argv: str, data: Optional[str] = None) -> str:
    proc = subprocess.run(("ip", "netns", "exec", ns) + argv, input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=False)
    assert proc.returncode == 0, "%s: %s" % (" ".join(argv), proc.stderr)
    return proc.stdout


def save_c(ns: str, cmd: str) -> str:
    """`*-save -c` without its comment lines: policies and counters included."""
    return "".join(line + "\n" for line in ns_run(ns, cmd, "-c").splitlines() if not line.startswith("#"))


def without(text: str, pattern: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if not re.search(pattern, line))


RULESET = """*filter
:INPUT DROP [111:2222]
:FORWARD ACCEPT [3:4]
:OUTPUT ACCEPT [555:6666]
:USER - [0:0]
[20:200] -A INPUT -m statistic --mode random --probability 0.3 -j DROP
[10:100] -A INPUT -i lo -j ACCEPT
[5:50] -A USER -j RETURN
COMMIT
*mangle
:PREROUTING ACCEPT [7:8]
:INPUT ACCEPT [9:10]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [11:12]
:POSTROUTING ACCEPT [13:14]
[4:40] -A PREROUTING -m statistic --mode nth --every 3 --packet 0 -j DROP
[6:60] -A PREROUTING -j ACCEPT
COMMIT
"""


# ---- item 1: counters and policies of every table, both backends, state absent and present --------------------

@pytest.mark.parametrize("backend", ["legacy", "nft"])
@pytest.mark.parametrize("prefix", ["iptables", "ip6tables"])
def test_counters_and_policies_are_kept_exactly(quiet_ns: str, prefix: str, backend: str) -> None:
    cmd = "%s-%s" % (prefix, backend)
    ns_run(quiet_ns, cmd + "-restore", "-c", data=RULESET)
    before = save_c(quiet_ns, cmd + "-save")
    assert ":INPUT DROP [111:2222]" in before and ":PREROUTING ACCEPT [7:8]" in before
    family = "ipv6" if prefix == "ip6tables" else "ipv4"
    r = ok(run_module("random_drop", state="absent", netns=quiet_ns, family=family, backend=backend))
    assert r["changed"] and len(r["removed"]) == 2
    assert save_c(quiet_ns, cmd + "-save") == without(before, "statistic")
    # state=present, then absent again: every other line, counters included, as it was
    r = ok(run_module("random_drop", state="present", netns=quiet_ns, family=family, backend=backend, chain="INPUT",
                      probability=0.25))
    assert r["changed"]
    now = save_c(quiet_ns, cmd + "-save")
    assert without(now, "statistic") == without(before, "statistic")
    assert "[0:0] -A INPUT -m statistic --mode random --probability 0.25000000000 -j DROP" in now
    ok(run_module("random_drop", state="present", netns=quiet_ns, family=family, backend=backend, chain="INPUT",
                  probability=0.5))
    assert without(save_c(quiet_ns, cmd + "-save"), "statistic") == without(before, "statistic")
    ok(run_module("random_drop", state="absent", netns=quiet_ns))
    assert save_c(quiet_ns, cmd + "-save") == without(before, "statistic")


# ---- item 2: a random drop in an incompatible iptables-nft table -------------------------------------------------

def test_random_drop_in_an_incompatible_table_is_reported_and_removed_by_handle(quiet_ns: str, tmp_path: Any) -> None:
    ns_run(quiet_ns, "iptables-nft", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.3",
           "-j", "DROP")
    ns_run(quiet_ns, "iptables-nft", "-A", "INPUT", "-p", "tcp", "-m", "statistic", "--mode", "nth", "--every", "4",
           "--packet", "1", "-j", "REJECT", "--reject-with", "tcp-reset")
    ns_run(quiet_ns, "iptables-nft", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.5",
           "-j", "ACCEPT")
    ns_run(quiet_ns, "nft", "add rule ip filter INPUT numgen inc mod 2 0 counter accept")
    assert "incompatible" in ns_run(quiet_ns, "iptables-nft-save")
    facts = run_module("iptables_facts", netns=quiet_ns)["ansible_facts"]["packetloss"]["iptables"]
    assert facts["available"] and facts["complete"] and facts["unread"] == []
    drops = facts["random_drop_rules"]
    assert sorted((r["table"], r["verdict"], r["statistic"]["source"]) for r in drops) == \
        [("filter", "drop", "xt statistic"), ("filter", "reject", "xt statistic")]
    listing = ns_run(quiet_ns, "nft", "-a", "list", "table", "ip", "filter")
    # a backup cannot restore xt expressions: refused, nothing changed
    r = run_module("random_drop", state="absent", netns=quiet_ns, backup=True, backup_dir=str(tmp_path / "b"))
    assert r.get("failed") and "opaque xt expressions" in r["msg"] and "nothing was changed" in r["msg"], r
    assert ns_run(quiet_ns, "nft", "-a", "list", "table", "ip", "filter") == listing
    dry = ok(run_module("random_drop", check=True, state="absent", netns=quiet_ns))
    assert dry["changed"] and sorted(x["handle"] for x in dry["removed"]) == sorted(x["handle"] for x in drops)
    done = ok(run_module("random_drop", state="absent", netns=quiet_ns, backend="nft"))
    assert done["changed"] and len(done["removed"]) == 2
    after = ns_run(quiet_ns, "nft", "-a", "list", "table", "ip", "filter")
    kept = [line for line in listing.splitlines()
            if not any(line.endswith("# handle %d" % x["handle"]) for x in drops)]
    assert after.splitlines() == kept
    assert "numgen inc mod 2 0" in after and after.count("# handle") == listing.count("# handle") - 2
    again = ok(run_module("random_drop", state="absent", netns=quiet_ns))
    assert again["changed"] is False


# ---- item 3: what cannot be read is not clean --------------------------------------------------------------------

def _ansible_env(path: str) -> Dict[str, str]:
    return dict(os.environ, PATH=path, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json")


def _adhoc(module: str, args: Dict[str, Any], env: Dict[str, str]) -> Dict[str, Any]:
    cmd = [os.path.join(os.path.dirname(PYTHON), "ansible"), "localhost", "-i",
           os.path.join(ROOT, "playbooks", "inventory", "localhost.yml"), "-m", "netdiag.packetloss." + module,
           "-a", json.dumps(args)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, check=False)
    head, body = proc.stdout.split(" => ", 1)
    data = json.loads(body)
    data["failed"] = head.split("|")[-1].strip().startswith("FAILED")
    return data


def test_save_binaries_off_path_is_not_read_and_random_drop_fails(quiet_ns: str) -> None:
    ns_run(quiet_ns, "iptables-nft", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.3",
           "-j", "DROP")
    env = _ansible_env("%s:/usr/bin:/bin" % os.path.dirname(PYTHON))  # the *-save and nft binaries are in /usr/sbin
    result = _adhoc("iptables_facts", {"netns": quiet_ns}, env)["ansible_facts"]["packetloss"]
    facts = result["iptables"]
    assert any("rulesets not read (missing_binary)" in w for w in result["warnings"]), result["warnings"]
    assert facts["available"] is False and facts["complete"] is False
    assert [(u["family"], u["backend"], u["cause"]) for u in facts["unread"]] == [("ipv4", "nft", "missing_binary")]
    assert "iptables-nft-save is not installed" in facts["reason"]
    r = _adhoc("random_drop", {"netns": quiet_ns, "state": "absent"}, env)
    assert r["failed"] and "cannot read the rulesets" in r["msg"] and "missing_binary" in r["msg"], r
    assert "statistic" in ns_run(quiet_ns, "iptables-nft-save")


NOBODY = """
import json
from ansible_collections.netdiag.packetloss.plugins.module_utils._collect.collector import Collector
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import HOST
from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import rules as rr
out = {"facts": Collector().collect(HOST, ["iptables"])["iptables"]}
try:
    rr.build({"state": "absent"})(HOST)
except rr.RemediationError as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


def test_non_root_is_not_read_and_random_drop_fails(quiet_ns: str) -> None:
    """As nobody inside the namespace (the system python: the venv's lives under /root)."""
    ns_run(quiet_ns, "iptables-legacy", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.3",
           "-j", "DROP")
    out = json.loads(ns_run(quiet_ns, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env",
                            "PYTHONPATH=" + COLLECTIONS, "/usr/bin/python3", "-c", NOBODY))
    facts = out["facts"]
    assert facts["available"] is False and facts["complete"] is False and facts["unread"][0]["cause"] == "no_root"
    assert facts["reason"].startswith("not root")
    assert "not root" in out["error"] and "nothing was changed" in out["error"]


# ---- item 4: a comment holding newlines --------------------------------------------------------------------------

PHANTOM = "x\n-A INPUT -m statistic --mode random --probability 0.5 -j DROP\n-A INPUT -m comment --comment "


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_comment_holding_newlines_is_no_random_drop(quiet_ns: str, backend: str) -> None:
    cmd = "iptables-" + backend
    ns_run(quiet_ns, cmd, "-A", "INPUT", "-m", "comment", "--comment", PHANTOM, "-j", "ACCEPT")
    before = save_c(quiet_ns, cmd + "-save")
    facts = run_module("iptables_facts", netns=quiet_ns, rules="drops")["ansible_facts"]["packetloss"]["iptables"]
    assert facts["random_drop_rules"] == [] and facts["rule_count"] == 1
    for check in (True, False, False):
        r = ok(run_module("random_drop", check=check, state="absent", netns=quiet_ns))
        assert r["changed"] is False and r["removed"] == []
    assert save_c(quiet_ns, cmd + "-save") == before
    # a real random drop whose comment holds a newline cannot be written as a restore line: refused, nothing changed
    ns_run(quiet_ns, cmd, "-A", "INPUT", "-m", "comment", "--comment", "a\nb", "-m", "statistic", "--mode", "random",
           "--probability", "0.5", "-j", "DROP")
    before = save_c(quiet_ns, cmd + "-save")
    r = run_module("random_drop", state="absent", netns=quiet_ns)
    assert r.get("failed") and "newline inside a quoted argument" in r["msg"] and "nothing was changed" in r["msg"], r
    assert save_c(quiet_ns, cmd + "-save") == before


# ---- item 7: concurrent remediations of one namespace -------------------------------------------------------------

def test_concurrent_runs_on_one_namespace(quiet_ns: str) -> None:
    for prefix in ("iptables-nft", "iptables-legacy", "ip6tables-nft"):
        ns_run(quiet_ns, prefix, "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP")
    results: List[Dict[str, Any]] = []

    def one() -> None:
        results.append(run_module("random_drop", state="absent", netns=quiet_ns))
    threads = [threading.Thread(target=one, name="run%d" % n) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(results) == 12
    assert [r.get("msg") for r in results if r.get("failed")] == []
    assert sum(1 for r in results if r["changed"]) == 1
    losers = [r for r in results if not r["changed"]]
    assert any("another remediation of this target held its lock" in r["msg"] for r in losers)
    for prefix in ("iptables-nft", "iptables-legacy", "ip6tables-nft"):
        assert "statistic" not in ns_run(quiet_ns, prefix + "-save")


# ---- item 8: backups ----------------------------------------------------------------------------------------------

def test_full_disk_leaves_no_backup_and_changes_nothing(quiet_ns: str, tmp_path: Any) -> None:
    rules = "".join("-A INPUT -s 10.%d.%d.0/24 -m comment --comment \"rule number %d of many\" -j ACCEPT\n"
                    % (i // 250, i % 250, i) for i in range(1500))
    ns_run(quiet_ns, "iptables-nft-restore", data="*filter\n" + rules + "-A INPUT -m statistic --mode random "
           "--probability 0.3 -j DROP\nCOMMIT\n")
    before = save_c(quiet_ns, "iptables-nft-save")
    assert len(before) > 64 * 1024
    mnt = tmp_path / "small"
    mnt.mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt))
    try:
        r = run_module("random_drop", state="absent", netns=quiet_ns, backup=True, backup_dir=str(mnt))
        assert r.get("failed") and "cannot write the backup" in r["msg"] and "nothing was changed" in r["msg"], r
        assert os.listdir(str(mnt)) == []
        assert save_c(quiet_ns, "iptables-nft-save") == before
    finally:
        sh("umount", str(mnt), check=False)


def test_backup_dir_open_to_others_is_refused(quiet_ns: str, tmp_path: Any) -> None:
    ns_run(quiet_ns, "iptables-nft", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP")
    before = save_c(quiet_ns, "iptables-nft-save")
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(str(open_dir), 0o777)
    r = run_module("random_drop", state="absent", netns=quiet_ns, backup=True, backup_dir=str(open_dir))
    assert r.get("failed") and "has mode 0777" in r["msg"] and "nothing was changed" in r["msg"], r
    assert os.stat(str(open_dir)).st_mode & 0o777 == 0o777 and os.listdir(str(open_dir)) == []
    assert save_c(quiet_ns, "iptables-nft-save") == before
    fresh = tmp_path / "new" / "dir"
    r = ok(run_module("random_drop", state="absent", netns=quiet_ns, backup=True, backup_dir=str(fresh)))
    assert r["changed"] and os.stat(str(fresh)).st_mode & 0o777 == 0o700
    assert [os.stat(f["path"]).st_mode & 0o777 for f in r["backup_files"]] == [0o600]
    assert sorted(os.listdir(str(fresh))) == [os.path.basename(r["backup_file"])]
