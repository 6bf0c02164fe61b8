"""Type aliases for the signatures of ``wengert.nn.functional`` and ``wengert.nn.losses``."""

from __future__ import annotations

from typing import Any

Array = Any  # a NumPy array, or a value traced by a wengert transformation
Size = int | tuple  # one int for every spatial axis, or one per axis
