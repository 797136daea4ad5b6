"""lossguard's engine: ``kernel`` (below properties and reports) and ``app`` (above everything)."""
