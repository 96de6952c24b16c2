"""The run record and what reads it back: provenance, reruns, resume, cloud clean-up."""
