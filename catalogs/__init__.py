"""Provenance: append-only Parquet tables, DuckDB views over them, builds and CRDS resolution.

``catalogs`` may import ``store`` and ``transforms``; it records what happened and answers
questions about it, and never runs science.
"""
