"""The fast rule splitter must split exactly as shlex.split (POSIX) does, and tell quoted words apart."""
from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.netdiag.packetloss.plugins.module_utils._common.errors import ParseError
from ansible_collections.netdiag.packetloss.plugins.module_utils._kernel.netfilter import _split_words


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=' ab"\'\\-\n\t', max_size=16))
def test_same_words_as_shlex(text):
    try:
        expected = shlex.split(text)
    except ValueError:
        with pytest.raises(ParseError):
            _split_words(text, "test", 1)
        return
    assert _split_words(text, "test", 1)[0] == expected


@pytest.mark.parametrize("spec,quoted", [
    ('-m comment --comment "-c 1 2" -j ACCEPT', [False, False, False, True, False, False]),
    ("--comment 'a b' x", [False, True, False]),
])
def test_quoted_flags(spec, quoted):
    assert _split_words(spec, "test", 1)[1] == quoted
