"""Builders of the models shipped in the package, run as modules from the repository root
(``python -m tools.build_shipped_model``, ``python -m tools.pretrain_preset``).

The model card's scoring uses the benchmarks' baseline and statistics
(`benchmarks.common`), so its figures and the benchmarks' are computed the same way.
"""
