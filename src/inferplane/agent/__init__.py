"""The workload plane: an agent that joins its cluster, runs replicas through a runtime, and
reports their status and load to the control plane, opening every connection itself."""
