"""The text of a standalone reproducer of one recorded finding (``lossguard repro``).

A script imports only the library under test, its framework (torch, or jax with NumPy for optax), NumPy where an
array literal needs it, and the standard library. It builds the one call of the library that the finding's witness
made fail (``repro_observe.locate``: the call and the element whose number is the failure's), with the binding's
adaptations written as plain code: keyword renames, sentinels, constructor arguments, positional order, layouts; a
binding's Python adapter (``Binding.call``) is copied verbatim with the module-level helpers it uses. It prints the
observed and the exact value and exits 1 while the defect is present, 0 once it is fixed.

The check is the finding's property in miniature:

* a number (agreement, gradient, an identity, low precision): the element against the exact value lossguard
  computed at generation time (embedded, with what it is), within lossguard's allowance for that element; a
  non-finite element where a finite one is due is the defect; ``>=``/``<=`` identities compare one way;
* finite / stability without an exact number: the element is finite;
* invalid_input: the call raises; a crash (the finding's ``raises``): the call (and its backward) runs through;
* dtype: the output's dtype is the input's (or the one the binding declares by design); shape: the output's shape.
"""

from __future__ import annotations

import inspect
import math
import re
import textwrap
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossguard.harness.app.bindings import _constructor_names, _library_names
from lossguard.harness.app.repro_observe import Call, Element, Observed
from lossguard.harness.app.target import is_module_class, resolve_object
from lossguard.harness.kernel.binding import Binding

_DTYPES = {"float64", "float32", "float16", "bfloat16"}


class NotScriptable(Exception):
    """The finding's failure cannot be written as a script automatically (a hand-written one is needed)."""


@dataclass(frozen=True)
class Check:
    """What the script judges: ``kind`` one of value, raises, accepts, dtype, shape; for value: the element
    (``Element``), the exact number, the tolerance, the comparison (``==``, ``>=``, ``<=``, ``finite``)."""

    kind: str
    element: Element | None = None
    exact: float | None = None
    tolerance: float | None = None
    compare: str = "=="
    expected: str = ""  # dtype / shape / exception text
    exact_is: str = ""  # what the exact number is, in words


# --- literals ------------------------------------------------------------------------------------------------


def _number(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return repr(bool(x))
    if isinstance(x, (int, np.integer)):
        return repr(int(x))
    x = float(x)
    if math.isnan(x):
        return 'float("nan")'
    if math.isinf(x):
        return 'float("inf")' if x > 0 else '-float("inf")'
    return repr(x)


def _nested(array: np.ndarray) -> str:
    if array.ndim == 0:
        return _number(array[()])
    return "[" + ", ".join(_nested(a) for a in array) + "]"


def _python(value: Any) -> str:
    """A parameter value as Python source (scalars, strings, None, tuples and lists of them)."""
    if value is None or isinstance(value, str):
        return repr(value)
    if isinstance(value, (bool, int, float, np.generic)):
        return _number(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_python(v) for v in value)
        return (
            f"({inner},)"
            if isinstance(value, tuple) and len(value) == 1
            else (f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
        )
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_python(v)}" for k, v in value.items()) + "}"
    raise NotScriptable(f"a parameter of type {type(value).__name__} has no literal")


# --- the library call ----------------------------------------------------------------------------------------


@dataclass
class Source:
    """The pieces of a script: imports, definitions (adapters), statements."""

    imports: list[str]
    definitions: list[str]
    lines: list[str]

    def add_import(self, line: str) -> None:
        if line not in self.imports:
            self.imports.append(line)


def _import_target(target: str, source: Source) -> str:
    """``pkg.mod:attr`` imported; the name the script calls it by."""
    module, _, attr = target.partition(":")
    if module.endswith(".py"):
        raise NotScriptable(f"a file target {target!r}")
    head, _, rest = attr.partition(".")
    source.add_import(f"from {module} import {head}")
    return attr if rest else head


def _constructed(value: Any, source: Source) -> str:
    """A binding's ``init`` value as source: ``{ object = "pkg.mod:Cls", k = v }`` as ``Cls(k=v)``."""
    if isinstance(value, dict) and "object" in value:
        name = _import_target(value["object"], source)
        keywords = ", ".join(f"{k}={_constructed(v, source)}" for k, v in value.items() if k != "object")
        return f"{name}({keywords})"
    return _python(value)


def _module_helpers(fn: types.FunctionType) -> list[Any]:
    """The module-level functions and constants of ``fn``'s module that ``fn`` uses, recursively (in order)."""
    module = inspect.getmodule(fn)
    found: list[Any] = []

    def visit(code: types.CodeType) -> None:
        for name in code.co_names:
            value = getattr(module, name, None)
            if isinstance(value, types.FunctionType) and value.__module__ == fn.__module__:
                if value not in found and value is not fn:
                    found.append(value)
                    visit(value.__code__)
            elif name in vars(module) and isinstance(value, (int, float, str, tuple)) and (name, value) not in found:
                found.append((name, value))
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                visit(const)

    visit(fn.__code__)
    return found


def _adapter(fn: Any, source: Source, why: str) -> str:
    """``fn`` (a binding's Python adapter, or a lossguard wrapper of a library function) copied into the script."""
    fn = getattr(fn, "func", fn)  # a functools.partial
    if not isinstance(fn, types.FunctionType):
        raise NotScriptable(f"the adapter {fn!r} is not a plain function")
    for helper in reversed(_module_helpers(fn)):
        text = (
            f"{helper[0]} = {helper[1]!r}" if isinstance(helper, tuple) else textwrap.dedent(inspect.getsource(helper))
        )
        if text not in source.definitions:
            source.definitions.append(text)
    text = textwrap.dedent(inspect.getsource(fn))
    text = f"# {why}, copied from {fn.__module__.replace('lossguard.', '')}\n{text}"
    if text not in source.definitions:
        source.definitions.append(text)
    for name in ("np", "torch", "F"):
        if name in fn.__code__.co_names or any(
            isinstance(h, types.FunctionType) and name in h.__code__.co_names for h in _module_helpers(fn)
        ):
            source.add_import(
                {"np": "import numpy as np", "torch": "import torch", "F": "import torch.nn.functional as F"}[name]
            )
    return fn.__name__


@dataclass(frozen=True)
class Target:
    """How the script calls the implementation: a shipped binding (None for a torch built-in) and its callable."""

    binding: Binding | None
    fn: Any
    framework: str
    canonical_args: tuple[str, ...]


def _array(name: str, value: np.ndarray, framework: str, grad: bool) -> str:
    values = np.asarray(value)
    if np.issubdtype(values.dtype, np.floating):
        tail = ", requires_grad=True" if grad and framework == "torch" else ""
        line = f"{name} = array({_nested(values)}{tail})"
        if len(line) <= 100 or values.ndim < 2:
            return line
        rows = [f"        {_nested(row)}," for row in values]
        return "\n".join([f"{name} = array(", "    [", *rows, f"    ]{tail},", ")"])
    if values.dtype == np.bool_:
        lib = "torch.tensor" if framework == "torch" else "jnp.asarray"
        return f"{name} = {lib}({_nested(values)})"
    if framework == "torch":
        return f"{name} = torch.tensor({_nested(values)}, dtype=torch.int64)"
    return f"{name} = jnp.asarray(np.asarray({_nested(values)}, dtype=np.int64))"


def _leaves(call: Call, target: Target) -> tuple[str, ...]:
    """The arrays the call differentiates (as the framework binding sets requires_grad)."""
    example = call.example
    floats = [
        n
        for n, v in {**example.args, **example.params}.items()
        if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)
    ]
    if call.grad:
        return tuple(n for n in call.grad if n in floats)
    if call.requires_grad and target.framework == "torch":
        return tuple(n for n in example.args if n in floats)
    return ()


def call_source(
    target: Target, call: Call, impl_accepted: frozenset[str], source: Source
) -> tuple[tuple[str, ...], list[str]]:
    """Statements that build the call's arrays (into ``source.lines``); the differentiated array names and the
    statements that compute ``out`` (the library's output, before any output layout)."""
    example = call.example
    leaves = _leaves(call, target)
    for name, value in example.args.items():
        if value is not None:
            source.lines.append(_array(name, value, target.framework, name in leaves))
    params = {k: v for k, v in example.params.items() if k in impl_accepted}
    array_params = {k: v for k, v in params.items() if isinstance(v, np.ndarray)}
    for name, value in array_params.items():
        source.lines.append(_array(name, value, target.framework, name in leaves))

    def value_of(name: str, value: Any) -> str:
        return name if name in array_params else _python(value)

    binding = target.binding
    if binding is None:  # a torch built-in (or lossguard's wrapper of one), called canonically by keyword
        fn = target.fn
        if fn.__module__.startswith("lossguard"):
            callee = _adapter(fn, source, "lossguard's binding of the torch function")
        else:
            source.add_import("import torch.nn.functional as F")
            callee = f"F.{fn.__name__}"
        positional = [n for n in target.canonical_args if n in example.args]
        words = [*positional, *(f"{k}={value_of(k, v)}" for k, v in params.items())]
        body = [_call("out", callee, words)]
    else:
        body = _binding_call(binding, target, example.args, params, value_of, source)
    return leaves, body


def _binding_call(binding: Binding, target: Target, args, params, value_of, source: Source) -> list[str]:
    obj, _ = resolve_object(binding.target)
    names = _library_names(binding, obj, _Spec(params))
    library: dict[str, str] = {}
    for canonical, value in params.items():
        if value is None and canonical in binding.none:
            text = _python(binding.none[canonical])
        else:
            text = value_of(canonical, value)
        for name in names.get(canonical, (canonical,)):
            library[name] = text
    lines: list[str] = []
    name = _import_target(binding.target, source)
    arrays = {n: n for n in args if args[n] is not None}
    if binding.input_layout == "classes-last" and np.ndim(args.get("input")) > 1:
        move = "torch.movedim" if target.framework == "torch" else "jnp.moveaxis"
        lines.append(f"moved = {move}(input, 1, -1)  # the library takes class scores last, (N, *, C)")
        arrays["input"] = "moved"
    callee = name
    if is_module_class(obj):
        constructor = _constructor_names(obj, names)
        words = [f"{k}={_constructed(v, source)}" for k, v in binding.init.items()]
        words += [f"{k}={v}" for k, v in library.items() if k in constructor]
        lines.append(_call("loss_fn", name, words))
        library = {k: v for k, v in library.items() if k not in constructor}
        callee = "loss_fn"
    keywords = "{" + ", ".join(f"{k!r}: {v}" for k, v in library.items()) + "}"
    if binding.call is not None:
        adapter = _adapter(binding.call, source, "the adapter of lossguard's binding (how the loss is called)")
        given = "{" + ", ".join(f"{k!r}: {v}" for k, v in arrays.items()) + "}"
        lines.append(_call("out", adapter, [callee, given, keywords]))
        return lines
    order = tuple(binding.args) if binding.args and not isinstance(binding.args, Mapping) else target.canonical_args
    named = dict(binding.args) if isinstance(binding.args, Mapping) else {}
    words = [arrays[n] for n in order if n in arrays and n not in named]
    words += [f"{named[n]}={arrays[n]}" for n in named if n in arrays]
    words += [f"{k}={v}" for k, v in library.items()]
    lines.append(_call("out", callee, words))
    return lines


def _call(result: str, callee: str, words: list[str]) -> str:
    """``result = callee(words)`` on one line, or one argument a line where that is long."""
    line = f"{result} = {callee}({', '.join(words)})"
    if len(line) <= 100:
        return line
    return "\n".join([f"{result} = {callee}(", *[f"    {w}," for w in words], ")"])


class _Spec:
    """The little of a LossSpec ``_library_names`` reads when a binding names no params (inspect=False)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params, self.name = dict(params), ""


# --- the output layout ---------------------------------------------------------------------------------------


def _layout_lines(binding: Binding | None, params: Mapping[str, Any], default_reduction: Any) -> list[str]:
    if binding is None or not binding.output:
        return []
    layout = binding.output.get(params.get("reduction", default_reduction), binding.output.get("*"))
    if layout == "sum-classes":
        return [
            "if value.ndim >= 2:  # the library keeps a class axis in its per-element output: summed",
            "    value = value.sum(1)",
        ]
    if layout == "squeeze-spatial":
        lead = 1 if params.get("batch") else 2
        return [f"value = value.reshape(value.shape[:{lead}])  # its spatial axes of size 1 dropped"]
    return []


# --- the whole script ----------------------------------------------------------------------------------------

_TORCH_HEAD = '''\
DTYPE = torch.{dtype}


def array(values, requires_grad=False):
    """float64 values rounded to DTYPE, as a training run in DTYPE holds them."""
    return torch.tensor(values, dtype=torch.float64).to(DTYPE).requires_grad_(requires_grad)
'''

_JAX_HEAD = '''\
DTYPE = jnp.{dtype}


def array(values):
    """float64 values rounded to DTYPE (through float32, as torch rounds), as a training run in DTYPE holds them."""
    values = np.asarray(values, dtype=np.float64)
    if DTYPE is not jnp.float64:
        values = values.astype(np.float32).astype(DTYPE)
    return jnp.asarray(values)
'''


def _wrap(text: str, prefix: str = "") -> list[str]:
    return textwrap.wrap(text, 110, initial_indent=prefix, subsequent_indent=prefix, break_on_hyphens=False) or [""]


def render(
    observed: Observed,
    target: Target,
    check: Check,
    call: Call,
    title: str,
    provenance: str,
    default_reduction: Any,
) -> str:
    """The script's text."""
    finding, result = observed.finding, observed.result
    source = Source([], [], [])
    framework = target.framework
    leaves, call_lines = call_source(target, call, observed.impl.accepted, source)
    if framework == "jax":
        source.lines += ["", "", f"def loss({', '.join(leaves)}):", *[f"    {x}" for x in call_lines], "    return out"]
    elif check.kind in ("accepts", "raises"):
        source.lines += ["", "", "def compute():", *[f"    {x}" for x in call_lines], "    return out"]
    else:
        source.lines += call_lines
    doc = [f"{title}", ""]
    doc += _wrap(finding.reason)
    doc += [""]
    if finding.where:
        doc += _wrap(f"Where it shows: {finding.where}.")
    doc += _wrap(f"lossguard's {finding.property!r} property on this example, {observed.dtype}: {result.message}")
    doc += [""]
    doc += _wrap(provenance)
    doc += ["Exit status: 1 while the defect is present, 0 once it is fixed."]
    docstring = '"""' + "\n".join(doc).replace("\\", "\\\\").replace('"""', "'''") + '\n"""'

    imports = ["import math", "import sys", ""]
    if framework == "torch":
        imports += ["import torch"]
        head = _TORCH_HEAD.format(dtype=call.dtype)
    else:
        imports += ["import jax", "import jax.numpy as jnp", "import numpy as np"]
        head = 'jax.config.update("jax_enable_x64", True)  # float64 as the float64 dtype, not float32\n\n'
        head += _JAX_HEAD.format(dtype=call.dtype)
    merged: dict[str, list[str]] = {}
    for line in source.imports:
        if line.startswith("from "):
            module, _, name = line[5:].partition(" import ")
            merged.setdefault(module, []).append(name)
    library_imports = sorted(i for i in source.imports if i not in imports and i.startswith("import "))
    library_imports += [f"from {m} import {', '.join(sorted(set(n)))}" for m, n in sorted(merged.items())]

    body = list(source.lines)
    body += [""]
    body += _check_lines(check, call, leaves, framework, target, default_reduction)

    parts = [
        "#!/usr/bin/env python3",
        docstring,
        "",
        "from __future__ import annotations",
        "",
        *imports,
        *[i for i in library_imports if i.startswith("import ")],
        *[i for i in library_imports if i.startswith("from ")],
        "",
        head,
    ]
    for definition in source.definitions:
        parts += ["", definition.rstrip(), ""]
    parts += ["", *body]
    if not any("math." in line for line in body):
        parts.remove("import math")
    if any("Any" in d for d in source.definitions):
        parts.insert(parts.index("import sys") + 1, "from typing import Any")
    text = "\n".join(parts).rstrip() + "\n"
    return re.sub(r"\n{3,}", "\n\n\n", text)


def _element_text(element: Element) -> str:
    return "[" + ", ".join(str(i) for i in element.position) + "]" if element.position else ""


def _check_lines(check: Check, call: Call, leaves, framework: str, target: Target, default_reduction) -> list[str]:
    binding = target.binding
    params = call.example.params
    lines: list[str] = []
    if framework == "torch":
        evaluate = ["value = out.detach()", *_layout_lines(binding, params, default_reduction)]
    else:
        args = ", ".join(leaves)
        evaluate = [
            "",
            "@jax.jit",
            "def value_and_gradients(*leaves):",
            "    out, backward = jax.vjp(loss, *leaves)",
            "    return out, backward(jnp.ones(out.shape, out.dtype))",
            "",
            f"out, grads = value_and_gradients({args})" if leaves else "out = jax.jit(loss)()",
            "value = out",
            *_layout_lines(binding, params, default_reduction),
        ]
    if check.kind == "accepts":
        if framework == "torch":
            return [
                "try:",
                *[f"    {line}" for line in _call_lines_again()],
                "except Exception as problem:  # the invalid input is rejected: fixed",
                '    print(f"observed: {type(problem).__name__}: {problem}")',
                f'    print("exact:    an exception ({check.expected})")',
                "    sys.exit(0)",
                'print(f"observed: a loss of {out.detach().double().tolist()} (no exception)")',
                f'print("exact:    an exception ({check.expected})")',
                "sys.exit(1)",
            ]
        return [
            "try:",
            f"    out = jax.jit(loss)({', '.join(leaves)})",
            "except Exception as problem:  # the invalid input is rejected: fixed",
            '    print(f"observed: {type(problem).__name__}: {problem}")',
            f'    print("exact:    an exception ({check.expected})")',
            "    sys.exit(0)",
            'print(f"observed: a loss of {np.asarray(out, dtype=np.float64).tolist()} (no exception)")',
            f'print("exact:    an exception ({check.expected})")',
            "sys.exit(1)",
        ]
    if check.kind == "raises":
        if framework == "torch":
            run = [*_call_lines_again(), *(["out.backward(torch.ones_like(out))"] if leaves else [])]
        else:
            run = evaluate[1:]
        what = "a loss and its gradient" if leaves else "a loss"
        return [
            "try:",
            *[f"    {line}" for line in run if line],
            "except Exception as problem:",
            '    print(f"observed: {type(problem).__name__}: {problem}")',
            f'    print("exact:    {what} (no exception)")',
            "    sys.exit(1)",
            f'print("observed: {what} (no exception): fixed")',
            f'print("exact:    {what} (no exception)")',
            "sys.exit(0)",
        ]
    lines += _run_lines(call, leaves, framework, evaluate, check)
    if check.kind == "dtype":
        lines += [
            "observed = str(out.dtype).replace('torch.', '')",
            *_comment(check.exact_is),
            f"exact = {check.expected!r}",
            'print(f"observed: output dtype {observed}")',
            'print(f"exact:    output dtype {exact}")',
            "sys.exit(0 if observed == exact else 1)",
        ]
        return lines
    if check.kind == "shape":
        lines += [
            "observed = tuple(value.shape)",
            *_comment(check.exact_is),
            f"exact = {check.expected}",
            'print(f"observed: output shape {observed}")',
            'print(f"exact:    output shape {exact}")',
            "sys.exit(0 if observed == exact else 1)",
        ]
        return lines
    element = check.element
    assert element is not None
    where = _element_text(element)
    if element.argument is None:
        pick = f"value{where}"
        what = f"loss{where}"
    elif framework == "torch":
        pick = f"{element.argument}.grad{where}"
        what = f"d loss / d {element.argument}{where}"
    else:
        pick = f"grads[{leaves.index(element.argument)}]{where}"
        what = f"d loss / d {element.argument}{where}"
    lines += [f"observed = float({pick})"]
    if check.exact is not None:
        lines += [*_comment(check.exact_is), f"exact = {_number(check.exact)}"]
    if check.tolerance is not None:
        lines += [
            f"# lossguard's allowance for this element in {call.dtype}",
            f"tolerance = {_number(check.tolerance)}",
        ]
    lines += [f'print(f"observed: {what} = {{observed!r}} ({call.dtype})")']
    if check.exact is not None:
        lines += [f'print(f"exact:    {what} = {{exact!r}}")']
    if check.compare == "finite":
        if check.exact is None:
            lines += [f'print("exact:    {what} is finite")']
        lines += ["sys.exit(0 if math.isfinite(observed) else 1)"]
    elif check.compare == ">=":
        lines += ["sys.exit(0 if observed >= exact - tolerance else 1)"]
    elif check.compare == "<=":
        lines += ["sys.exit(0 if observed <= exact + tolerance else 1)"]
    elif check.compare == "exactly":
        lines += ["sys.exit(0 if observed == exact else 1)"]
    elif math.isfinite(check.exact or 0.0):
        lines += ["sys.exit(0 if abs(observed - exact) <= tolerance else 1)"]
    else:  # the exact value is itself non-finite (NaN: a mean over nothing): the same non-finite value
        lines += ["sys.exit(0 if (math.isnan(observed) and math.isnan(exact)) or observed == exact else 1)"]
    return lines


def _comment(text: str) -> list[str]:
    return _wrap(text, "# ")


def _call_lines_again() -> list[str]:
    return ["out = compute()"]


def _run_lines(call: Call, leaves, framework: str, evaluate: list[str], check: Check) -> list[str]:
    if framework == "torch":
        lines = list(evaluate)
        if check.element is not None and check.element.argument is not None:
            lines = ["out.backward(torch.ones_like(out))", *lines]
        return lines
    return evaluate
