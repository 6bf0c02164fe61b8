"""Shared test setup: make the tape replace *every* unsaved value with a stand-in.

In normal use only arrays above ``core._STAND_IN_SIZE`` elements are dropped from the tape
when a VJP does not read them; the tests use small arrays, so they lower the threshold to
make every ``Primitive.saving`` declaration face every ``check_grads``.
"""

import pytest

import wengert.core


@pytest.fixture(autouse=True)
def _stand_ins_everywhere(monkeypatch):
    monkeypatch.setattr(wengert.core, "_STAND_IN_SIZE", -1)


# Property tests draw the same examples on every run, so a failure in CI reproduces locally.
from hypothesis import settings  # noqa: E402

settings.register_profile("wengert", derandomize=True, deadline=None)
settings.load_profile("wengert")
