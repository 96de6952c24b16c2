"""Vertex AI: the targets (upload, Model, endpoints, batch prediction, serving container) and training (cluster=vertex jobs, sweep=vertex tuning, the replicas' side, clean-up)."""
