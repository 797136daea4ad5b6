"""Resolve an audit TARGET (``package.module:attr`` or ``path/to/file.py:attr``) into the object it names.

The object may be a function, an ``nn.Module`` class or an ``nn.Module`` instance; how it is called is its
binding's business (``lossguard.harness.app.bindings``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any


class TargetError(Exception):
    """The TARGET cannot be resolved; the message says what to fix (the CLI exits 2 with it)."""


def _load_module(location: str) -> Any:
    if location.endswith(".py") or "/" in location or os.sep in location:
        path = Path(location)
        if not path.is_file():
            raise TargetError(f"TARGET file {location!r} does not exist")
        name = f"lossguard_target_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise TargetError(f"TARGET file {location!r} cannot be imported as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise TargetError(f"importing {location!r} raised {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(path.resolve().parent))
        return module
    if os.getcwd() not in sys.path:  # a user's package.module is found from where they run lossguard
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(location)
    except ImportError as exc:
        raise TargetError(f"cannot import module {location!r}: {exc}") from exc
    except Exception as exc:
        raise TargetError(f"importing {location!r} raised {type(exc).__name__}: {exc}") from exc


def resolve_object(target: str) -> tuple[Any, str]:
    """The object TARGET names, and the file it was defined in."""
    location, sep, attr = target.rpartition(":")
    if not sep or not location or not attr:
        raise TargetError(f"TARGET {target!r} must be 'package.module:attr' or 'path/to/file.py:attr'")
    module = _load_module(location)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            known = ", ".join(n for n in dir(module) if not n.startswith("_"))[:300]
            raise TargetError(f"{location!r} has no attribute {attr!r} (it has: {known})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TargetError(f"{target!r} is a {type(obj).__name__}, not a function or an nn.Module")
    source = inspect.getsourcefile(obj if not is_module_instance(obj) else type(obj)) or getattr(
        module, "__file__", ""
    )
    return obj, str(source or "")


def is_module_class(obj: Any) -> bool:
    import torch

    return inspect.isclass(obj) and issubclass(obj, torch.nn.Module)


def is_module_instance(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module)
