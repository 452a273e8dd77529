"""``arc.signals`` and ``arc.quarantine`` → the append-only, hash-chained tables."""
