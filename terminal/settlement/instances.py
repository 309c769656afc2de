"""Frozen dataclass instances built from their complete field values, interpreted or compiled by mypyc."""

from __future__ import annotations

from typing import Any, TypeVar

_T = TypeVar("_T")

# class -> True when mypyc compiled it (a native class: fixed slots, no instance __dict__)
_NATIVE: dict[type, bool] = {}


def compiled_class(cls: type) -> bool:
    """True when mypyc compiled cls to a native class (fixed slots, no instance __dict__)."""
    native = _NATIVE.get(cls)
    if native is None:
        native = _NATIVE[cls] = hasattr(cls, "__mypyc_attrs__")
    return native


def filled(cls: type[_T], values: dict[str, Any]) -> _T:
    """An instance of a frozen dataclass from its complete field values, without calling __init__.

    The generated __init__ of a frozen dataclass sets each field through object.__setattr__; for the
    15 fields of a LineResult, 50 times a bill, that was the largest single cost of a settlement. The
    engine passes every field, so the object is the same one __init__ would build. A class compiled by
    mypyc has no instance __dict__ to hand over: its fields are set one by one, still without the
    interpreted __init__ that mypyc keeps for dataclasses.
    """
    if compiled_class(cls):
        obj: Any = cls.__new__(cls)
        for name, value in values.items():
            object.__setattr__(obj, name, value)
        return obj  # type: ignore[no-any-return]
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    return obj  # type: ignore[no-any-return]
