"""Speed benchmarks: the project's models against a plain PyTorch equivalent, in one process."""
