"""Every golden wire fixture (tests/golden/<kind>/<case>.json, see tests/golden_runner.py)
replayed through the live gateway: the adapter sends exactly the request the provider's
reference shows, and reads each answer, stream and error as the reference describes.
A case's "proves" list puts it in docs/providers.md's feature matrix."""

from __future__ import annotations

import pytest

from tests.golden_runner import cases, load, run

pytestmark = pytest.mark.django_db(transaction=True)


def _params():
    for path in cases():
        case = load(path)
        marks = [pytest.mark.proves(case["kind"], *case["proves"])] if case.get("proves") else []
        yield pytest.param(path, marks=marks, id=f"{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("path", list(_params()))
def test_golden_case(path, build, gateway):
    case = load(path)
    case.setdefault("name", path.stem)
    run(case, build, gateway)
