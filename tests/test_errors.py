"""errors.py holds every error class of the project, and its docstring draws them as they are."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator

import voice_companion
from voice_companion import errors

_DRAWN = re.compile(r"^    (?P<branch>(?:[│ ]   )*(?:[├└]── )?)(?P<name>[A-Z]\w*)\b")


def drawn_tree(doc: str) -> dict[str, str | None]:
    """Each class drawn in the docstring → the class drawn above it (None for a root)."""
    block = doc.split("::\n", 1)[1]
    parents: dict[str, str | None] = {}
    path: list[str] = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break  # the prose after the drawing
        m = _DRAWN.match(line)
        if not m:
            continue
        depth = len(m["branch"]) // 4
        del path[depth:]
        parents[m["name"]] = path[-1] if path else None
        path.append(m["name"])
    return parents


def _subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def project_errors() -> set[type[BaseException]]:
    """Every exception class defined anywhere in voice_companion (every module imported)."""
    for module in pkgutil.walk_packages(voice_companion.__path__, "voice_companion."):
        if not module.name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(module.name)
    return {c for c in _subclasses(BaseException) if c.__module__.startswith("voice_companion")}


def test_every_error_class_is_defined_in_errors_py() -> None:
    elsewhere = sorted(
        f"{c.__module__}.{c.__qualname__}"
        for c in project_errors()
        if c.__module__ != "voice_companion.errors"
    )
    assert not elsewhere, f"define these in voice_companion/errors.py: {elsewhere}"


def test_every_companion_error_is_drawn_under_its_real_parent() -> None:
    drawn = drawn_tree(errors.__doc__ or "")
    classes = {c for c in project_errors() if issubclass(c, errors.CompanionError)}
    classes.add(errors.CompanionError)
    missing = sorted(c.__name__ for c in classes if c.__name__ not in drawn)
    assert not missing, f"not drawn in errors.py's docstring: {missing}"
    for cls in classes:
        parent = cls.__bases__[0].__name__ if cls is not errors.CompanionError else None
        assert drawn[cls.__name__] == parent, f"{cls.__name__} is drawn under the wrong class"


def test_the_drawing_names_only_real_classes_and_the_oserror_ones_too() -> None:
    drawn = drawn_tree(errors.__doc__ or "")
    for name, parent in drawn.items():
        cls = OSError if name == "OSError" else getattr(errors, name, None)
        assert isinstance(cls, type) and issubclass(cls, BaseException), name
        if parent is not None:
            assert cls.__bases__[0].__name__ == parent, name
    # Not CompanionError on purpose (see the docstring), but in the drawing all the same.
    assert drawn["SymlinkRefusedError"] == drawn["NotRegularFileError"] == "OSError"
    assert not issubclass(errors.SymlinkRefusedError, errors.CompanionError)


def test_the_reader_of_the_drawing_sees_depth() -> None:
    doc = """x

::

    Root                 the base
    ├── A                one
    │   └── A1           under A
    └── B
        └── B1

Prose.
"""
    assert drawn_tree(doc) == {"Root": None, "A": "Root", "A1": "A", "B": "Root", "B1": "B"}
