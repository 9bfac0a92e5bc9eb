"""Runtimes: how an agent runs engines. `base.Runtime` is the interface; `process` runs them as
child processes of the agent; a Kubernetes runtime runs them as pods behind the same interface."""
