"""Benchmarks run by ``grantchain bench ...``; each reports ratios against a baseline
measured in the same process. Results are recorded in ``benchmarks/RESULTS.md``.

May import every package of the project.
"""
