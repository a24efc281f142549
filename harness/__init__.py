"""The test harness, beside the service and never imported by it: the servers tests and
benchmarks start, and the one-command demo."""
