"""Recipes: TOML files validated into typed dataclasses (schema), with ``--set`` overrides."""
