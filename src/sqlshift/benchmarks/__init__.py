"""Benchmarks behind the `Benchmark` contract (sqlshift.benchmarks.api); each module is one benchmark family."""
