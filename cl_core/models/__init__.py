"""Model adapters: every checkpoint format behind one `encode(modality, items)` protocol."""
