"""End-to-end pipelines used by the recipes (train each method, evaluate, tabulate)."""
