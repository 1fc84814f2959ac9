"""The profile command's choices as plain data, so `prefixbench --help` lists them without importing torch."""
from __future__ import annotations

TOOLS = ("auto", "nsys", "ncu", "torch")
CLOCK_CONTROLS = ("base", "none")      # ncu --clock-control; base is ncu's default
CACHE_CONTROLS = ("all", "none")       # ncu --cache-control; all (flush before each kernel) is ncu's default
