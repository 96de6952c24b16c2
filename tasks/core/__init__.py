"""The neutral core both runner/ and the steps use: schemas, plans, paths, record I/O, environment readers.

Imports only the standard library, omegaconf and hydra (a test holds it), so validation stays fast and
nothing here can pull the runner into a step or TensorFlow into validation.
"""
