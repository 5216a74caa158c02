# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write report files on the controller in one task (see plugins/modules/report_files.py for the documentation)."""
from __future__ import annotations

import datetime
import functools
import gc
import glob
import json
import os
import tempfile
import uuid
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import yaml
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_version

from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import merge as _merge
from ansible_collections.netdiag.packetloss.plugins.module_utils._reports import report as _report

RUN_KEYS = ("id", "group", "slice", "limit", "started_at")


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
                             "summary_worst", "all_hosts", "run", "merge", "stats_severity", "stats_limit"))

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
        if sum(1 for k in ("files", "hosts", "merge") if args.get(k) is not None) != 1:
            raise AnsibleActionFail("give one of files (a list of {path, content}), hosts (whose diagnoses to report) "
                                    "and merge (the report sets to merge)")
        try:
            perms = int(str(mode), 8)
        except ValueError:
            raise AnsibleActionFail("mode %r is not an octal file mode" % (mode,))
        if args.get("merge") is not None:
            plan = self._merged_reports(args, task_vars or {}, result, dest)
        elif files is None:
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
        fleet = args.get("hosts") is not None or args.get("merge") is not None
        result.update(changed=False, dest=dest, written=written if not fleet else [
            p for p in written if os.path.basename(p) in _report.FLEET_FILES + (_report.TEXTFILE,) and os.path.dirname(p) == dest])
        if fleet:
            result["target_files"] = len(written) - len(result["written"])
        return result

    def _options(self, args: Dict[str, Any]) -> Tuple[int, float, str, int, str]:
        """summary_worst, max_probe_loss, fail_severity, stats_limit, stats_severity - checked."""
        try:
            worst = int(args.get("summary_worst", 20))
            max_loss = float(args.get("max_probe_loss", 0.0))
            stats_limit = int(args.get("stats_limit", 50))
        except (TypeError, ValueError):
            raise AnsibleActionFail("summary_worst and stats_limit must be integers and max_probe_loss a number")
        for name, value in (("summary_worst", worst), ("stats_limit", stats_limit)):
            if value < 0:
                raise AnsibleActionFail("%s must be 0 or more" % name)
        severities = ("info", "warning", "critical")
        fail_severity, stats_severity = args.get("fail_severity", "warning"), args.get("stats_severity", "warning")
        for name, value in (("fail_severity", fail_severity), ("stats_severity", stats_severity)):
            if value not in severities:
                raise AnsibleActionFail("%s must be one of %s, got %r" % (name, ", ".join(severities), value))
        return worst, max_loss, fail_severity, stats_limit, stats_severity

    @staticmethod
    def _run_given(args: Dict[str, Any]) -> Dict[str, Optional[str]]:
        """The run option: {id, group, slice, limit, started_at}, each a string or None (empty: chosen here)."""
        given = args.get("run") or {}
        if not isinstance(given, Mapping) or set(given) - set(RUN_KEYS):
            raise AnsibleActionFail("run must be a dictionary of %s, got %r" % (", ".join(RUN_KEYS), given))
        out: Dict[str, Optional[str]] = {}
        for key in RUN_KEYS:
            value = given.get(key)
            if value is not None and not isinstance(value, (str, int)):
                raise AnsibleActionFail("run.%s must be a string, got %r" % (key, value))
            out[key] = str(value) if value not in (None, "") else None
        return out

    def _run_record(self, args: Dict[str, Any], task_vars: Dict[str, Any], started: Optional[str],
                    hosts: int, kind: str = "run") -> Dict[str, Any]:
        """The run's record (docs/report-schema.md#runs): what the run option gives, else AWX's job (awx_job_id) and
        workflow job (awx_workflow_job_id), --limit (ansible_limit), and a fresh id."""
        given = self._run_given(args)
        job = task_vars.get("awx_job_id", task_vars.get("tower_job_id"))
        workflow = task_vars.get("awx_workflow_job_id", task_vars.get("tower_workflow_job_id"))
        now = datetime.datetime.now(datetime.timezone.utc)
        fresh = "%s%s-%s" % ("merge-" if kind == "merge" else "", now.strftime("%Y%m%dT%H%M%SZ"), uuid.uuid4().hex[:8])
        limit = task_vars.get("ansible_limit") if kind == "run" else None
        return {
            "id": given["id"] or ("awx-job-%s" % job if job not in (None, "") and kind == "run" else fresh),
            "group": given["group"] or ("awx-workflow-job-%s" % workflow if workflow not in (None, "") and kind == "run" else None),
            "slice": given["slice"], "limit": given["limit"] or (str(limit) if limit else None), "kind": kind, "hosts": hosts,
            "started_at": given["started_at"] or started, "finished_at": now.replace(microsecond=0).isoformat(),
            "collection_version": _collection_version(), "ansible_version": ansible_version,
        }

    def _merged_reports(self, args: Dict[str, Any], task_vars: Dict[str, Any], result: Dict[str, Any],
                        dest: str) -> List[Tuple[str, Callable[[], str]]]:
        """The reports of the report sets in ``merge`` (directories, or glob patterns of them), merged into one fleet
        (merge.merge_sets), rendered by the writers of a run's reports."""
        entries = args.get("merge")
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list) or not entries or not all(isinstance(e, str) and e for e in entries):
            raise AnsibleActionFail("merge must be a list of report directories (or glob patterns of them)")
        worst, max_loss, fail_severity, stats_limit, stats_severity = self._options(args)
        report_dir = os.path.realpath(os.path.expanduser(dest))
        dirs: List[str] = []
        for entry in entries:
            path = os.path.expanduser(entry)
            found = sorted(p for p in glob.glob(path) if os.path.isdir(p)) if any(c in path for c in "*?[") else [path]
            if not found:
                raise AnsibleActionFail("merge: %s matches no directory" % entry)
            dirs += found
        try:
            sets = []
            for directory in dirs:
                if os.path.realpath(directory) == report_dir:
                    raise _merge.MergeError("dest %s is one of the report sets to merge: write the merged set elsewhere"
                                            % report_dir)
                sets.append(_merge.load_set(directory))
            diagnoses, missing, merged = _merge.merge_sets(sets)
            run = self._run_record(args, task_vars, _merge.started_at(merged["runs"]), len(diagnoses) + len(missing), "merge")
            plan, result["summary"] = _report.report_plan(diagnoses, report_dir, fail_severity, max_loss, worst, missing,
                                                          True, run, merged)
            result["stats"] = _report.workflow_result(diagnoses, report_dir, run, missing, stats_severity, stats_limit)
        except (ValueError, TypeError, KeyError) as exc:
            raise AnsibleActionFail("cannot merge the report sets: %s" % to_text(exc))
        result.update(run=run, sources=merged["sources"], superseded=merged["superseded"])
        return plan

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
        all_hosts = args.get("all_hosts") or []
        if not isinstance(all_hosts, list) or not all(isinstance(h, str) for h in all_hosts):
            raise AnsibleActionFail("all_hosts must be a list of inventory host names")
        worst, max_loss, fail_severity, stats_limit, stats_severity = self._options(args)
        write = self._bool(args.get("write", True), "write")
        diagnoses, missing = _plain_diagnoses(task_vars.get("hostvars"), hosts, var)
        missing += sorted(set(all_hosts) - set(hosts) - set(missing))  # unreachable, or failed before the reports
        report_dir = os.path.abspath(os.path.expanduser(dest))
        run = self._run_record(args, task_vars, _first_snapshot(diagnoses), len(diagnoses) + len(missing))
        try:
            plan, result["summary"] = _report.report_plan(diagnoses, report_dir, fail_severity, max_loss, worst, missing,
                                                          write, run)
            result["stats"] = _report.workflow_result(diagnoses, report_dir if write else None, run, missing,
                                                      stats_severity, stats_limit)
        except (ValueError, TypeError, KeyError) as exc:
            raise AnsibleActionFail("cannot render the reports: %s" % to_text(exc))
        result["run"] = run
        return plan

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


def _first_snapshot(diagnoses: List[Dict[str, Any]]) -> Optional[str]:
    """When the run's first collection began: the earliest first snapshot of every target (else analysis time)."""
    times = [t.get("snapshots", {}).get("before") or d.get("generated_at") for d in diagnoses
             for t in (d.get("targets") or {}).values()] or [d.get("generated_at") for d in diagnoses]
    times = [str(t) for t in times if t]
    return _merge.started_at([{"started_at": t} for t in times])


def _collection_version() -> Optional[str]:
    """This collection's version: MANIFEST.json of an installed collection, else galaxy.yml of a work tree."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        with open(os.path.join(root, "MANIFEST.json"), encoding="utf-8") as handle:
            return str(json.load(handle)["collection_info"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(os.path.join(root, "galaxy.yml"), encoding="utf-8") as handle:
            return str(yaml.safe_load(handle)["version"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


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
