"""lossguard: property-based verification and benchmarks of machine-learning loss functions.

One installed namespace. Its subpackages live in the repository's top-level folders (the layout
of docs/ARCHITECTURE.md) and are mapped here by ``[tool.setuptools.package-dir]`` in
pyproject.toml, so a user's own ``reports/`` or ``reference/`` package never shadows them:

- ``lossguard.reference``: float64 NumPy/SciPy ground truth (no torch, no other lossguard package);
- ``lossguard.harness.kernel``: data model, tolerance policy, failures, subject, framework
  bindings, profiles, strategies' base (what properties and reports stand on);
- ``lossguard.catalog``: one LossSpec per row of the canonical contract;
- ``lossguard.properties``: Hypothesis properties, generic and per family;
- ``lossguard.implementations``: torch built-ins, lossguard's own losses;
- ``lossguard.reports``: terminal, JSON and plots rendered from PropertyResults;
- ``lossguard.harness.app``: catalog loading, runner, target resolution, isolation, CLI, docs.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lossguard")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = "0+unknown"
