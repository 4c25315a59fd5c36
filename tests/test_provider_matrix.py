"""docs/providers.md's feature matrix is what the tests' `proves` marks say."""

from __future__ import annotations

import pytest

from tests.provider_matrix import DOC, collect, render, splice

pytestmark = pytest.mark.slow


def test_the_committed_matrix_is_generated_from_the_marks():
    cells = collect()
    assert cells, "no test carries a proves() mark"
    doc = DOC.read_text()
    assert splice(doc, render(cells)) == doc, "docs/providers.md is stale: run python -m tests.provider_matrix"


def test_every_tick_names_a_known_kind():
    from providers.kinds import KINDS

    unknown = {kind for kind, _ in collect()} - set(KINDS)
    assert not unknown, f"proves() names kinds that do not exist: {sorted(unknown)}"
