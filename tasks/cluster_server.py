"""A ps or worker task of a parameter-server cluster: a TensorFlow server that runs until stopped.

Started by the runner as `python -m tfrun.tasks.cluster_server` with TF_CONFIG set;
the chief (the tfrun child running the plan) dispatches work to it.
"""

from __future__ import annotations

import sys


def main() -> int:
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=resolver.task_type,
        task_index=resolver.task_id,
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    print(f"{resolver.task_type}:{resolver.task_id} serving at {server.target}", flush=True)
    server.join()  # blocks in TensorFlow until the runner stops this process (SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
