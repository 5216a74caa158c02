# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/report_scale.py only: set a host's packetloss_diagnosis fact from a prepared JSON file, the way the diagnose
action returns it (ansible_facts), without running the fact modules."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("src",))

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super(ActionModule, self).run(tmp, task_vars)
        with open(self._task.args["src"]) as f:
            diagnosis = json.load(f)
        result.update(changed=False, ansible_facts={"packetloss_diagnosis": diagnosis})
        return result
