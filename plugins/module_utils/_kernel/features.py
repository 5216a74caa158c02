# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the running kernel has, where it cannot be asked directly: loaded modules, its config, its module lists.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

import gzip
import os
import re
from typing import Optional


def _config() -> Optional[str]:
    for path in ("/proc/config.gz", "/boot/config-%s" % os.uname().release):
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as handle:  # type: ignore[operator]
                return handle.read()
        except OSError:
            continue
    return None


def kernel_has(option: str, module: str) -> Optional[bool]:
    """Whether this kernel has CONFIG_``option`` (built in, or ``module``.ko to load): True, False, or None when it
    cannot be told (no config, no module lists)."""
    if os.path.isdir("/sys/module/%s" % module):
        return True
    config = _config()
    if config is not None:
        if re.search(r"^CONFIG_%s=[ym]$" % option, config, re.M):
            return True
        if re.search(r"^# CONFIG_%s is not set$" % option, config, re.M):
            return False
    moddir = "/lib/modules/%s" % os.uname().release
    for name in ("modules.builtin", "modules.dep"):
        try:
            with open(os.path.join(moddir, name)) as handle:
                if re.search(r"(^|/)%s\.ko" % re.escape(module), handle.read(), re.M):
                    return True
        except OSError:
            continue
    return False if os.path.isdir(moddir) else None


__all__ = ["kernel_has"]
