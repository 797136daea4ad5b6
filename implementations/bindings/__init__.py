"""The libraries lossguard ships bindings for: ``<library>.toml`` (bindings as data) and, where a convention
needs code or findings are recorded, the module ``<library>`` (``BINDINGS``, ``FINDINGS``); see docs/BINDINGS.md.
A library module imports only lossguard and NumPy at import time (the library itself may not be installed)."""
