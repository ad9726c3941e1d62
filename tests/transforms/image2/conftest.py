"""Fixtures for the image2 tests (helpers live in image2_helpers.py, a unique module name)."""

from __future__ import annotations

import pytest
from image2_helpers import make_rate, make_refs


@pytest.fixture
def rate():
    return make_rate()


@pytest.fixture(scope="session")
def refs():
    return make_refs()
