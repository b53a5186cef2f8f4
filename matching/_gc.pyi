"""Type stub of the compiled collector helper (ext/_gc.pyx)."""
from typing import TypeVar

_T = TypeVar("_T", bound=tuple[object, ...])

def untracked(items: _T) -> _T: ...
