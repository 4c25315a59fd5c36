"""Shared by the tests/test_fakes_*.py modules: the conversations sent to every fake."""

from __future__ import annotations

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to me"}]
USER_ONLY = [{"role": "user", "content": "Say hello to me"}]
