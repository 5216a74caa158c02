# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write report files on the controller in one task (see plugins/modules/report_files.py for the documentation)."""
from __future__ import annotations

import functools
import gc
import os
import tempfile
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report


def _safe_join(dest: str, rel: Any) -> str:
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
        raise AnsibleActionFail("report file path %r must be relative to dest, without '..'" % (rel,))
    return os.path.join(dest, rel)


def _obstacle(dest: str, path: str, checked: Optional[Set[str]] = None) -> Optional[str]:
    """What keeps ``path`` from being written as a regular file, or None: the path itself, or one of its directories
    below ``dest``, being something else. ``checked``: directories already found fine (each is checked once)."""
    if os.path.lexists(path) and (os.path.isdir(path) or not (os.path.isfile(path) or os.path.islink(path))):
        return "it is a directory" if os.path.isdir(path) else "it is not a regular file"
    directory = os.path.dirname(path)
    while len(directory) >= len(dest):
        if checked is not None and directory in checked:
            break
        if os.path.lexists(directory) and not os.path.isdir(directory):
            return "%s is not a directory" % directory
        if checked is not None:
            checked.add(directory)
        if directory == dest:
            break
        directory = os.path.dirname(directory)
    return None


def _write(path: str, content: str, mode: int, made: Optional[Set[str]] = None) -> None:
    """Atomically: a temporary file in the same directory, then rename. ``made``: directories known to exist."""
    directory = os.path.dirname(path)
    if made is None or directory not in made:
        os.makedirs(directory, exist_ok=True)
        if made is not None:
            made.add(directory)
    tmp = os.path.join(directory, ".report-%d-%s" % (os.getpid(), os.path.basename(path)))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:  # left by a run that was killed: a fresh name instead
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".report-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


class ActionModule(ActionBase):
    """Runs in the controller process: no module is sent anywhere, whatever host the task is for."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "files", "mode", "hosts", "var", "write", "fail_severity", "max_probe_loss",
                             "summary_worst"))

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        # This worker is a fork of the controller, which holds every host's facts: each collection of the garbage
        # collector would walk all of them (and copy them, page by page, from the controller's memory) again and
        # again while the reports are rendered (at 300 hosts x 20 targets: 4.9 s with it, 2.9 s without;
        # docs/report-scale.md). What is allocated here has no reference cycles; the collector is back on after.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(tmp, task_vars)
        finally:
            if enabled:
                gc.enable()

    def _run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        dest, files, mode = args.get("dest"), args.get("files"), args.get("mode", "0644")
        if not isinstance(dest, str) or not dest:
            raise AnsibleActionFail("dest (a directory on the controller) is required")
        if (files is None) == (args.get("hosts") is None):
            raise AnsibleActionFail("give either files (a list of {path, content}) or hosts (whose diagnoses to report)")
        try:
            perms = int(str(mode), 8)
        except ValueError:
            raise AnsibleActionFail("mode %r is not an octal file mode" % (mode,))
        if files is None:
            plan = self._diagnosis_reports(args, task_vars or {}, result, dest)
        elif isinstance(files, list) and all(isinstance(f, dict) and "path" in f and "content" in f for f in files):
            plan = [(f["path"], functools.partial(str, f["content"])) for f in files]
        else:
            raise AnsibleActionFail("files must be a list of {path, content}")
        dest = os.path.abspath(os.path.expanduser(dest))
        targets = [(_safe_join(dest, path), render) for path, render in plan]  # every path checked first
        checked: Set[str] = set()
        for path, _render in targets:
            problem = _obstacle(dest, path, checked)
            if problem:
                raise AnsibleActionFail("cannot write %s: %s (nothing was written; remove it or choose another dest)"
                                        % (path, problem))
        written: List[str] = []
        made: Set[str] = set()
        with _report.evidence_cache():
            for path, render in targets:  # each rendered when it is written: never every report in memory at once
                try:
                    content = render()
                except (ValueError, TypeError, KeyError) as exc:
                    raise AnsibleActionFail("cannot render %s: %s" % (path, to_text(exc)))
                try:
                    _write(path, content, perms, made)
                except OSError as exc:  # the destination is named, never the temporary file
                    raise AnsibleActionFail("cannot write %s: %s%s" % (
                        path, exc.strerror or exc, " (written before it: %s)" % ", ".join(written[-20:]) if written else ""))
                written.append(path)
        # Reports are the run's output on the controller, not a change to a managed host.
        result.update(changed=False, dest=dest, written=written if args.get("hosts") is None else
                      [p for p in written if os.path.basename(p) in _report.FLEET_FILES and os.path.dirname(p) == dest])
        if args.get("hosts") is not None:
            result["target_files"] = len(written) - len(result["written"])
        return result

    def _diagnosis_reports(self, args: Dict[str, Any], task_vars: Dict[str, Any], result: Dict[str, Any],
                           dest: str) -> List[Tuple[str, Callable[[], str]]]:
        """The reports of the diagnoses of ``hosts`` (and the console summary, into ``result``), computed here on plain
        data read from hostvars once: not by a filter over Ansible's lazily templated containers, whose output Ansible
        would post-process again (12-15 times the cost at 20,000 targets, docs/report-scale.md)."""
        hosts, var = args.get("hosts"), args.get("var", "packetloss_diagnosis")
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise AnsibleActionFail("hosts must be a list of inventory host names")
        if not isinstance(var, str) or not var:
            raise AnsibleActionFail("var must be the name of the variable that holds each host's diagnosis")
        try:
            worst = int(args.get("summary_worst", 20))
            max_loss = float(args.get("max_probe_loss", 0.0))
        except (TypeError, ValueError):
            raise AnsibleActionFail("summary_worst must be an integer and max_probe_loss a number")
        if worst < 0:
            raise AnsibleActionFail("summary_worst must be 0 or more")
        fail_severity = args.get("fail_severity", "warning")
        write = self._bool(args.get("write", True), "write")
        diagnoses, missing = _plain_diagnoses(task_vars.get("hostvars"), hosts, var)
        report_dir = os.path.abspath(os.path.expanduser(dest))
        try:
            plan, result["summary"] = _report.report_plan(diagnoses, report_dir, fail_severity, max_loss, worst, missing, write)
            return plan
        except (ValueError, TypeError, KeyError) as exc:
            raise AnsibleActionFail("cannot render the reports: %s" % to_text(exc))

    @staticmethod
    def _bool(value: Any, name: str) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise AnsibleActionFail("%s must be a boolean, got %r" % (name, value))


def _plain(value: Any) -> Any:
    """Plain dicts, lists, strings and numbers, from whatever containers Ansible handed out."""
    if isinstance(value, dict):
        return dict((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str) and type(value) is not str:  # pylint: disable=unidiomatic-typecheck
        return str(value)
    return value


def _cached_fact(hostvars: Any, host: str, var: str) -> Any:
    """``var`` of ``host`` as the diagnose task set it: from the variable manager's fact caches (set_fact's first,
    which takes precedence over facts), as stored - no copy, no templating. None when it is not there (or this
    ansible-core keeps facts elsewhere): the caller then asks hostvars, with all of Ansible's precedence.

    Why: hostvars[host] (and HostVars.raw_get) compute every variable of the host and deep-copy its facts, per host
    and per access - about 25 ms per host with a 20-target diagnosis, most of the report task at 1000 hosts."""
    manager = getattr(hostvars, "_variable_manager", None)
    for name in ("_nonpersistent_fact_cache", "_fact_cache"):
        cache = getattr(manager, name, None)
        try:
            facts = cache.get(host) if cache is not None else None
        except Exception:  # pylint: disable=broad-except  # a cache plugin that cannot answer: ask hostvars
            facts = None
        if isinstance(facts, Mapping) and var in facts:
            return facts[var]
    return None


def _plain_diagnoses(hostvars: Any, hosts: List[str], var: str) -> Tuple[List[Dict[str, Any]], List[str]]:
    """Each host's diagnosis as plain data, taken once (_cached_fact, else hostvars[host]); the hosts without one."""
    out: List[Dict[str, Any]] = []
    missing: List[str] = []
    if hostvars is None:
        raise AnsibleActionFail("no hostvars in the task's variables")
    for host in hosts:
        try:
            value = _cached_fact(hostvars, host, var)
            if not _is_diagnosis(value) and host in hostvars:
                value = hostvars[host].get(var)
        except Exception as exc:  # pylint: disable=broad-except  # an undefined or broken variable: named, not a traceback
            raise AnsibleActionFail("cannot read %s of %s: %s" % (var, host, to_text(exc)))
        if _is_diagnosis(value):
            out.append(value if type(value) is dict else _plain(value))  # pylint: disable=unidiomatic-typecheck
        else:
            missing.append(host)
    return out, missing


def _is_diagnosis(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("targets"), Mapping)
