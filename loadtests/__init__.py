"""Load tests and benchmarks of the reservation core (run as modules, e.g. loadtests.bench_core)."""
