"""The parts of bench/autoscaling_live.py: the fleet it starts, the runs it drives, the
figures, the cold-start breakdown, the decision cost and the report."""
