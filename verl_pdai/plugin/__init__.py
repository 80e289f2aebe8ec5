"""Thin adapters that meet verl: one module per verl concept."""
