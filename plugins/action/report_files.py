# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write report files on the controller in one task (see plugins/modules/report_files.py for the documentation)."""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def _safe_join(dest: str, rel: Any) -> str:
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
        raise AnsibleActionFail("report file path %r must be relative to dest, without '..'" % (rel,))
    return os.path.join(dest, rel)


def _obstacle(dest: str, path: str) -> Optional[str]:
    """What keeps ``path`` from being written as a regular file, or None: the path itself, or one of its directories
    below ``dest``, being something else."""
    if os.path.lexists(path) and (os.path.isdir(path) or not (os.path.isfile(path) or os.path.islink(path))):
        return "it is a directory" if os.path.isdir(path) else "it is not a regular file"
    directory = os.path.dirname(path)
    while len(directory) >= len(dest):
        if os.path.lexists(directory) and not os.path.isdir(directory):
            return "%s is not a directory" % directory
        if directory == dest:
            break
        directory = os.path.dirname(directory)
    return None


def _write(path: str, content: str, mode: int) -> None:
    """Atomically: a temporary file in the same directory, then rename."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".report-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ActionModule(ActionBase):
    """Runs in the controller process: no module is sent anywhere, whatever host the task is for."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "files", "mode"))

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        dest, files, mode = args.get("dest"), args.get("files"), args.get("mode", "0644")
        if not isinstance(dest, str) or not dest:
            raise AnsibleActionFail("dest (a directory on the controller) is required")
        if not isinstance(files, list) or not all(isinstance(f, dict) and "path" in f and "content" in f for f in files):
            raise AnsibleActionFail("files must be a list of {path, content}")
        try:
            perms = int(str(mode), 8)
        except ValueError:
            raise AnsibleActionFail("mode %r is not an octal file mode" % (mode,))
        dest = os.path.abspath(os.path.expanduser(dest))
        targets = [(_safe_join(dest, f["path"]), str(f["content"])) for f in files]  # every path checked first
        for path, _content in targets:
            problem = _obstacle(dest, path)
            if problem:
                raise AnsibleActionFail("cannot write %s: %s (nothing was written; remove it or choose another dest)"
                                        % (path, problem))
        written: List[str] = []
        for path, content in targets:
            try:
                _write(path, content, perms)
            except OSError as exc:  # the destination is named, never the temporary file
                raise AnsibleActionFail("cannot write %s: %s%s" % (
                    path, exc.strerror or exc, " (written before it: %s)" % ", ".join(written) if written else ""))
            written.append(path)
        # Reports are the run's output on the controller, not a change to a managed host.
        result.update(changed=False, dest=dest, written=written)
        return result
