# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per task into $TASK_TIMES_FILE, for bench/report_scale.py: ``wall`` from its start to the start of the next task
(so it includes what Ansible does in between, such as the implicit role_complete meta task over every host that
ends a role), ``own`` from its start to its last result, ``cpu`` of this process and its reaped workers over the
``wall`` window, and ``memory``."""
from __future__ import annotations

import json
import os
import resource
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: task wall times into a JSON file (bench only)
description: Task name -> seconds, written to the file named by TASK_TIMES_FILE at the end of the run.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.times: dict = {}
        self.own: dict = {}
        self.cpu: dict = {}
        self.memory: dict = {}
        self.cpu_start = self.rss_start = 0.0
        self.current = None
        self.start = 0.0

    @staticmethod
    def _cpu() -> float:
        """CPU seconds of this process and of its reaped workers."""
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    @staticmethod
    def _rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024.0

    def _close(self) -> None:
        if self.current is not None:
            self.times[self.current] = self.times.get(self.current, 0.0) + time.monotonic() - self.start
            self.cpu[self.current] = self.cpu.get(self.current, 0.0) + self._cpu() - self.cpu_start
            # the peak of the workers reaped so far (a worker is a fork of this process: its RSS counts the facts)
            self.memory[self.current] = {"main_rss_mb": self._rss_mb(), "workers_max_rss_mb": resource.getrusage(
                resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, "main_rss_mb_before": self.rss_start}
            self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):  # pylint: disable=unused-argument
        self._close()
        self.current, self.start, self.cpu_start, self.rss_start = task.get_name(), time.monotonic(), self._cpu(), self._rss_mb()

    def _result(self) -> None:
        if self.current is not None:  # the task's own end: its (last) result is in
            self.own[self.current] = time.monotonic() - self.start

    def v2_runner_on_ok(self, result):  # pylint: disable=unused-argument
        self._result()

    def v2_runner_on_failed(self, result, ignore_errors=False):  # pylint: disable=unused-argument
        self._result()

    def v2_runner_on_skipped(self, result):  # pylint: disable=unused-argument
        self._result()

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_play_start(self, play):  # pylint: disable=unused-argument
        self._close()

    def v2_playbook_on_stats(self, stats):  # pylint: disable=unused-argument
        self._close()
        with open(os.environ["TASK_TIMES_FILE"], "w") as f:
            json.dump({"wall": self.times, "own": self.own, "cpu": self.cpu, "memory": self.memory}, f)
