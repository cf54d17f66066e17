"""Benchmark code shared by the scripts under scripts/ (the frontier of students)."""
