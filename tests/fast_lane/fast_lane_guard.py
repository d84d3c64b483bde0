"""The fast lane's guard: the libraries that run models can be found but not imported.

``make check`` runs the tests not marked ``models``. Third-party model libraries are imported
only in ``voice_companion/engines/``, lazily, when a model is loaded, so importing one means a
test loads a model. The guard lets ``importlib.util.find_spec`` still locate a package (the
bundled model paths are found that way) and refuses only the import itself, with an error
that names the fix. It is a ``BaseException`` so that no ``except Exception`` in the code
under test turns it into a polite one-line error and a passing test.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

MODEL_LIBRARIES = frozenset({"faster_whisper", "ctranslate2", "piper", "llama_cpp", "onnxruntime"})


class ModelInFastLaneError(BaseException):
    pass


class _Refuse(importlib.abc.Loader):
    def __init__(self, name: str) -> None:
        self.name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        raise ModelInFastLaneError(
            f"this test imports {self.name}, so it loads a model: mark it "
            "@pytest.mark.models (or use a model fixture, see MODEL_FIXTURES in tests/conftest.py)"
        )


class _Guard(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name.partition(".")[0] not in MODEL_LIBRARIES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None:
            spec.loader = _Refuse(name)
        return spec


def install() -> None:
    if not any(isinstance(f, _Guard) for f in sys.meta_path):
        sys.meta_path.insert(0, _Guard())
