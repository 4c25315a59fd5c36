"""Every golden wire fixture (tests/golden/<kind>/<case>.json, see tests/golden_runner.py)
replayed through the live gateway: the adapter sends exactly the request the provider's
reference shows, and reads each answer, stream and error as the reference describes."""

from __future__ import annotations

import pytest

from tests.golden_runner import cases, load, run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_case(path, build, gateway):
    case = load(path)
    case.setdefault("name", path.stem)
    run(case, build, gateway)
