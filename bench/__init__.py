"""On-demand chaos runs and benchmarks against the sandbox (not part of `make test`)."""
