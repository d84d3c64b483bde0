"""Benchmarks that report numbers (tests never assert wall-clock times): ``latency``."""
