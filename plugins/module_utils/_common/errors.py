# Copyright (c) 2026 netdiag.packetloss contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception the parsers raise, and the small input helpers they share.

This module_utils is PRIVATE and should only be used by this collection.
"""
from __future__ import annotations

from typing import Optional, Union


class ParseError(ValueError):
    """Input that a parser cannot read.

    ``source`` names the file or command output, ``line`` is the 1-based line
    number (or None when the problem is not tied to one line).
    str() gives e.g. "malformed /proc/net/snmp line 3: header has 12 fields, values 11".
    """

    def __init__(self, source: str, line: Optional[int], reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = source if line is None else "%s line %d" % (source, line)
        super(ParseError, self).__init__("malformed %s: %s" % (where, reason))


def to_text(data: Union[str, bytes, bytearray], source: str) -> str:
    """Return ``data`` as str; bytes must be UTF-8. Anything else is a ParseError."""
    if isinstance(data, str):
        return data
    if isinstance(data, (bytes, bytearray)):
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(source, None, "not UTF-8 text (%s)" % exc.reason)
    raise ParseError(source, None, "expected text, got %s" % type(data).__name__)


# Every counter the kernel prints is at most 64 bits wide (u64, or s64 such as Tcp MaxConn -1). A larger value is
# not a counter but damage; it is refused (a ParseError), not clamped, so it never reaches a report as a number.
# This also keeps every returned int JSON-safe: far below Python's 4300-digit str() limit, and within what
# Ansible and the controller's JSON handle.
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1


def to_int(token: str, source: str, line: Optional[int], base: int = 10) -> int:
    """int(token, base) that raises ParseError (also for '+', '_' and other str.int quirks), in INT_MIN..INT_MAX."""
    token = token.strip()
    body = token[1:] if token[:1] == "-" else token
    digits = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
    if not body or any(c not in digits for c in body):
        raise ParseError(source, line, "%r is not a base-%d integer" % (token[:40], base))
    if len(body.lstrip("0")) > 20:  # more digits than any 64-bit value has, in base 10 or 16: no int() of it
        raise ParseError(source, line, "%r... (%d digits) does not fit in 64 bits" % (token[:20], len(body)))
    value = int(token, base)
    if not INT_MIN <= value <= INT_MAX:
        raise ParseError(source, line, "%r does not fit in 64 bits" % token[:40])
    return value
