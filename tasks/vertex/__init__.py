"""Vertex AI targets: upload to GCS, Model.upload, endpoints, batch prediction, serving container."""
