"""Benchmarks behind the `Benchmark` contract (sqlshift.api); each module is one benchmark family."""
