"""Merge to main: bundles, model versions and local deployment."""
