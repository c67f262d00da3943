"""spanbert-eval: several checkpoints judged on the same masked blocks, per span length in words
(docs/evaluation.md)."""
