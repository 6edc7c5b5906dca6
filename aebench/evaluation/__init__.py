"""Evaluation: reconstruction metrics, the downstream classifier, and the shared evaluator."""
