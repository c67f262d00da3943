"""Placeholder; the hub interface follows."""
