"""Predict: labels for image files from a run directory, a .keras file, a SavedModel or a backbone preset."""
