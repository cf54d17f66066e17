"""The runner the recipes and benchmarks share: train each method on the same data and student, score, tabulate.

(Called `hfqd.pipelines` before; renamed so it is not confused with transformers pipelines.)
"""
