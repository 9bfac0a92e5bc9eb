"""The control plane's reconcilers, one module per kind they own."""
