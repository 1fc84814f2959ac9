"""Figures, the report and the regression gate, from records only (no timing is recomputed here)."""
