"""The processes a run uses: the warm child, the supervisor, a local cluster's layout, the TF log filter."""
