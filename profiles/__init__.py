"""NVTX ranges and profiler runs (nsys, ncu, torch profiler) with per-range attribution."""
