"""Scheduled monitoring: reference profile, drift check and simulated traffic."""
