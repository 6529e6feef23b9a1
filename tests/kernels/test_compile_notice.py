"""The first compilation of a process says so, once (a fresh install's first run compiles for about
a minute; silence would look like a hang)."""

from __future__ import annotations

import logging

from numba import njit

from tumorsynth.kernels import compile_notice


def test_the_first_compilation_logs_the_notice_once(caplog, monkeypatch):
    monkeypatch.setattr(compile_notice._LISTENER, "told", False)  # as in a fresh process

    @njit  # not cached: compiles on each first call with new argument types
    def twice(x):
        return 2 * x

    with caplog.at_level(logging.WARNING, logger="tumorsynth"):
        assert twice(2) == 4
        assert twice(2.5) == 5.0  # a second compilation: no second notice
    notices = [r for r in caplog.records if r.getMessage() == compile_notice.NOTICE]
    assert len(notices) == 1
    assert "first run only" in notices[0].getMessage()
