"""The kernel that properties and reports stand on: data model, tolerance policy, failures,
subject, framework bindings, Hypothesis profiles and the strategies' base. It knows no concrete
loss and imports no other lossguard package (import-linter contracts in pyproject.toml)."""
