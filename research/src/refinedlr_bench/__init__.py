"""Benchmarks of the schedules on real data (datasets: :mod:`refinedlr_bench.data`)."""
