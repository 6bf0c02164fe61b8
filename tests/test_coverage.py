"""The coverage table: every differentiable function has a check_grads test, and
docs/coverage.md is the table the registry generates now."""

import pathlib
import re

import pytest

pytest.importorskip("scipy")

from wengert._coverage import entries, table  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = pathlib.Path(__file__).resolve().parent


def _words(text: str) -> set:
    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text))


def _test_files() -> list:
    """(words, text) of each test file that calls check_grads."""
    out = []
    for path in sorted(TESTS.glob("test_*.py")):
        if path.name == "test_coverage.py":
            continue
        text = path.read_text(encoding="utf-8")
        if "check_grads" in text:
            out.append(_words(text))
    return out


def _covered(module: str, names: list, files: list) -> bool:
    """Some check_grads test file names the module (every dotted part after the top-level
    'numpy'/'scipy', and 'scipy' itself for SciPy) and the function (every part of it)."""
    need_mod = [p for p in module.split(".") if p != "numpy"]
    for words in files:
        if not all(p in words for p in need_mod):
            continue
        for name in names:
            if all(p in words for p in name.split(".")):
                return True
    return False


def test_every_differentiable_function_has_a_check_grads_test():
    files = _test_files()
    missing = [
        e.qualname
        for e in entries()
        if e.differentiable and not _covered(e.module, [e.name, *e.aliases], files)
    ]
    assert not missing, (
        f"{len(missing)} differentiable function(s) have no check_grads test: "
        f"{', '.join(missing)}. Add a test (in a tests/test_*.py file that calls check_grads and "
        "names the function, e.g. wnp.linalg.solve or wsp.special.gammaln) that checks it in "
        "both modes to order 2."
    )


def test_coverage_table_is_current():
    path = ROOT / "docs" / "coverage.md"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    assert current == table(), (
        "docs/coverage.md is out of date with the registry (wengert._coverage): run "
        "`python tools/gen_coverage.py` and commit the result."
    )


def test_registry_reads_rules():
    """Support comes from the rules: a primitive without a VJP is forward-only."""
    import wengert.numpy as wnp
    from wengert._coverage import _classify
    from wengert.core import Primitive

    p = Primitive("fwd_only", lambda x: x).defjvp(lambda t, ans, x: t)
    e = _classify("numpy", "fwd_only", p)
    assert (e.kind, e.forward, e.reverse) == ("primitive", True, False)
    assert _classify("numpy", "floor", wnp.floor).kind == "constant"
    iv = next(e for e in entries() if e.qualname == "scipy.special.iv")
    assert "no derivative in v" in iv.notes
