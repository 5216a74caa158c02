# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection's filter plugins share (controller side).

This plugin_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

from typing import Any, Callable

from ansible.errors import AnsibleFilterError


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input to a filter becomes an AnsibleFilterError that names the filter."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError, KeyError) as exc:
            raise AnsibleFilterError("%s: %s" % (fn.__name__, exc))
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
