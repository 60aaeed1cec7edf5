"""Model files: weight and model files read safely (hash sidecars, inspected .keras archives, legacy torch files)."""
