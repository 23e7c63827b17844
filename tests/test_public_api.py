"""The public API is exactly ``surge.__all__``: every name there exists, and nothing public is left out."""

from __future__ import annotations

import types

import surge


def test_all_names_exist() -> None:
    missing = [name for name in surge.__all__ if not hasattr(surge, name)]
    assert missing == []


def test_no_public_name_outside_all() -> None:
    public = {
        name
        for name, value in vars(surge).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public - set(surge.__all__) == set()


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in surge.__all__ if n != "__version__"]
    assert names == sorted(set(names))


def test_public_names_documented() -> None:
    undocumented = [
        name
        for name in surge.__all__
        if name != "__version__" and not (getattr(surge, name).__doc__ or "").strip()
    ]
    assert undocumented == []
