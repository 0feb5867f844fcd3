"""Benchmarks of the proxy's added latency and CPU cost; run ``benchmarks/bench.py``."""
