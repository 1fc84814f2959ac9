"""The measurement harness: workloads, grids, timing, crash isolation, records."""
