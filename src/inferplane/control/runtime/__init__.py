"""The controller runtime: work queue, reconcile loops fed by watches, event recording."""
