# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_remediate: what both remediation modules share - check mode, backups before changes, failures, names."""
from __future__ import annotations

import datetime
import os
import stat
from typing import Any, Dict, List

import pytest

from ansible_collections.netdiag.packetloss.plugins.module_utils._remediation import common as r
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.target import HOST, Target


@pytest.fixture(autouse=True)
def lock_dir(tmp_path: Any, monkeypatch: Any) -> None:
    """The remediation lock in the test's own directory, not /run (which only root may write)."""
    monkeypatch.setattr(r, "LOCK_DIR", str(tmp_path / "locks"))


class Exit(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode: bool = False, diff: bool = True, **params: Any) -> None:
        self.check_mode = check_mode
        self._diff = diff
        self.params = dict(netns=None, container=None, backup=False, backup_dir=None)
        self.params.update(params)
        self.result: Dict[str, Any] = {}
        self.warnings: List[str] = []

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)

    def exit_json(self, **kwargs: Any) -> None:
        self.result = kwargs
        raise Exit()

    def fail_json(self, **kwargs: Any) -> None:
        self.result = dict(kwargs, failed=True)
        raise Exit()


def make_plan(log: List[str], fail_at: int = -1, problems: Any = ()) -> Any:
    def build(target: Target) -> r.Plan:
        plan = r.Plan(target)
        for i in range(3):
            def apply(i: int = i) -> None:
                if i == fail_at:
                    raise r.RemediationError("step %d refused" % i)
                log.append("step %d" % i)
            plan.steps.append(r.Step("step %d" % i, apply))
        plan.removed.append({"rule": "x"})
        plan.backup.append(r.BackupPart("rules", "saved\n", "restore < {path}", {"family": "ipv4"}))
        plan.diffs.append(r.diff_entry("t", "a\nb", "a"))
        plan.verify = lambda: list(problems)
        return plan
    return build


def run(module: FakeModule, build: Any) -> Dict[str, Any]:
    with pytest.raises(Exit):
        r.execute(module, "test", build, lambda plan, check: "summary check=%s" % check)
    return module.result


def test_check_mode_changes_nothing_and_writes_nothing(tmp_path: Any) -> None:
    log: List[str] = []
    result = run(FakeModule(check_mode=True, backup=True, backup_dir=str(tmp_path / "b")), make_plan(log))
    assert log == [] and not os.path.exists(str(tmp_path / "b"))
    assert result["changed"] and result["removed"] == [{"rule": "x"}] and result["backup_files"] == []
    assert result["msg"] == "summary check=True"
    assert result["diff"] == [{"before_header": "t (before)", "after_header": "t (after)", "before": "a\nb\n", "after": "a\n"}]


def test_backup_is_written_first_with_mode_0600(tmp_path: Any) -> None:
    log: List[str] = []
    old = os.umask(0)
    try:
        result = run(FakeModule(backup=True, backup_dir=str(tmp_path / "b")), make_plan(log))
    finally:
        os.umask(old)
    assert log == ["step 0", "step 1", "step 2"]
    path = result["backup_file"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(tmp_path / "b")).st_mode) == 0o700
    with open(path) as f:
        assert f.read() == "saved\n"
    assert result["backup_files"][0]["restore"] == "restore < %s" % path
    assert result["backup_files"][0]["family"] == "ipv4"


def test_a_failed_step_says_what_was_applied(tmp_path: Any) -> None:
    log: List[str] = []
    result = run(FakeModule(backup=True, backup_dir=str(tmp_path)), make_plan(log, fail_at=1))
    assert result["failed"] and result["msg"] == "step 1 refused"
    assert result["applied"] == ["step 0"] and result["changed"] and len(result["backup_files"]) == 1


def test_verification_problems_fail_the_module() -> None:
    result = run(FakeModule(), make_plan([], problems=["rule still there"]))
    assert result["failed"] and "verification after the change failed: rule still there" in result["msg"]


def test_bad_target_fails_before_anything() -> None:
    log: List[str] = []
    result = run(FakeModule(netns="no such ns"), make_plan(log))
    assert result["failed"] and "invalid network namespace name" in result["msg"] and log == []


def test_backups_never_overwrite(tmp_path: Any) -> None:
    now = datetime.datetime(2026, 11, 27, tzinfo=datetime.timezone.utc)
    part = r.BackupPart("rules", "x", "cat {path}", {})
    first = r.write_backup(str(tmp_path), "m", HOST, [part], now)[0]["path"]
    second = r.write_backup(str(tmp_path), "m", HOST, [part], now)[0]["path"]
    assert first != second and second == first + ".1"


def test_restore_commands_enter_the_namespace() -> None:
    assert r.shell_prefix(Target("netns", "lab1", "/run/netns/lab1")) == "ip netns exec lab1 "
    assert r.shell_prefix(Target("netns", "/proc/1/ns/net", "/proc/1/ns/net")) == "nsenter --net=/proc/1/ns/net "
    assert r.shell_prefix(Target("container", "nginx", "/proc/9/ns/net", 9)).startswith(
        "nsenter --net=/proc/$(docker inspect -f '{{.State.Pid}}' nginx)/ns/net")
    assert r.shell_prefix(HOST) == ""


@pytest.mark.parametrize("kind,value,ok", [
    ("chain", "KUBE-SEP-ABC", True), ("chain", "DOCKER-ISOLATION-STAGE-1", True), ("chain", "in", True),
    ("chain", "-F", False), ("chain", "a b", False), ("chain", "x\nCOMMIT", False), ("chain", "", False),
    ("chain", "!x", False), ("chain", "x" * 65, False),
    ("table", "filter", True), ("table", "ip6foo", True), ("table", "a;b", False), ("table", ".x", False),
    ("interface", "eth0", True), ("interface", "veth1234@if5", True), ("interface", "x" * 16, False),
    ("interface", "eth0 up", False), ("interface", "../x", False), ("interface", "eth0:1", False),
])
def test_names(kind: str, value: str, ok: bool) -> None:
    if ok:
        assert r.check_name(kind, value) == value
    else:
        with pytest.raises(r.RemediationError):
            r.check_name(kind, value)


# ---- issue 14 item 8: backups complete or absent, backup_dir 0700 -------------------------------------------------

def test_backup_dir_open_to_others_is_refused_and_left_alone(tmp_path: Any) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(str(open_dir), 0o777)
    parts = [r.BackupPart("rules", "saved\n", "restore < {path}", {})]
    with pytest.raises(r.RemediationError) as err:
        r.write_backup(str(open_dir), "m", HOST, parts)
    assert "has mode 0777" in str(err.value) and "nothing was changed" in str(err.value)
    assert stat.S_IMODE(os.stat(str(open_dir)).st_mode) == 0o777 and os.listdir(str(open_dir)) == []
    os.chmod(str(open_dir), 0o700)
    written = r.write_backup(str(open_dir), "m", HOST, parts)
    assert [os.path.basename(w["path"]) for w in written] == os.listdir(str(open_dir))


def test_a_failed_backup_leaves_no_file(tmp_path: Any, monkeypatch: Any) -> None:
    """The second part cannot be written (as on a full disk): the first one goes too, no temporary file stays."""
    calls = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(r.os, "fsync", fsync)
    parts = [r.BackupPart("a", "one\n", "x {path}", {}), r.BackupPart("b", "two\n", "x {path}", {})]
    with pytest.raises(r.RemediationError) as err:
        r.write_backup(str(tmp_path / "d"), "m", HOST, parts)
    assert "No space left on device" in str(err.value) and "no backup was kept" in str(err.value)
    assert os.listdir(str(tmp_path / "d")) == []


def test_a_part_that_cannot_be_restored_is_refused_before_anything(tmp_path: Any) -> None:
    parts = [r.BackupPart("a", "one\n", "x {path}", {}), r.BackupPart("b", "", "x {path}", {}, refuse="xt inside")]
    with pytest.raises(r.RemediationError) as err:
        r.write_backup(str(tmp_path / "d"), "m", HOST, parts)
    assert "xt inside" in str(err.value) and not os.path.exists(str(tmp_path / "d"))


# ---- issue 14 item 7: one remediation per target -------------------------------------------------------------------

def test_target_lock_waits_for_the_holder(tmp_path: Any) -> None:
    import threading
    import time
    first = r.TargetLock(directory=str(tmp_path)).__enter__()
    threading.Timer(0.3, first.__exit__).start()
    started = time.monotonic()
    with r.TargetLock(directory=str(tmp_path)) as second:
        assert second.waited >= 0.2 and time.monotonic() - started >= 0.25
    with r.TargetLock(directory=str(tmp_path)) as third:
        assert third.waited == 0.0
    assert stat.S_IMODE(os.stat(second.path).st_mode) == 0o600


def test_target_lock_gives_up_after_its_timeout(tmp_path: Any) -> None:
    with r.TargetLock(directory=str(tmp_path)):
        with pytest.raises(r.RemediationError) as err:
            r.TargetLock(timeout=0.2, directory=str(tmp_path)).__enter__()
    assert "still holds its lock" in str(err.value) and "nothing was changed" in str(err.value)
