"""Model architectures the reference engine runs, one module per family."""
