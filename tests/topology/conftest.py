import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "topologies"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.fixture(params=NAMES)
def fixture_name(request):
    return request.param


@pytest.fixture
def fixture_doc(fixture_name):
    return json.loads((FIXTURES / f"{fixture_name}.json").read_text())
