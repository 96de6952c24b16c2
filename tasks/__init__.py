"""tfrun steps: each module holds plain functions of (config, context).

Modules here may import TensorFlow; they run in the runner's child process.
`tfrun.tasks.core` is the exception: pure Python, used by validation too.
"""
