"""Outcomes, canonical types, statistics and reward presets: pure functions, no Beam."""
