"""Artifact inspection: the only package that imports scikit-learn."""
