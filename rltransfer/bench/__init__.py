"""Benchmarks: game throughput beside reference implementations, and the training loop."""
