"""Local TF Serving: model repository, an embedded server that speaks TF Serving's REST and gRPC
APIs, clients, backends (binary | docker | embedded) and the target's steps.

Modules and what they import:

    status      gRPC status codes, ServingError, TF Serving's gRPC -> HTTP mapping   (stdlib)
    config      model server config file, version policies, batching parameters       (protobuf)
    jsonio      TF Serving's REST JSON <-> numpy rules                                 (numpy)
    batching    server-side batching: merge concurrent requests into one model call   (numpy)
                (callers wait on a thread event or, from asyncio, on a future)
    repository  <base>/<model>/<version> versions, push, rollback, warm-up file        (stdlib; TF for warm-up)
    tensors     TensorProto <-> numpy, fast paths                                      (TF protos)
    servable    one loaded version: signatures, predict / classify / regress, warm-up (TF)
    manager     versions on disk -> loaded servables: policies, labels, atomic swaps  (TF)
    rest        the REST API (http.server, Nagle off)
    grpc_api    PredictionService and ModelService (blocking handlers; Predict awaits batches)
    grpc_server the gRPC server: a thread pool without batching, grpc.aio with it
    server      the embedded server process (`tfrun-serve`)
    clients     REST and gRPC clients used by the target and offered to users
    backends    choose and start binary / docker / embedded, stop by PID
    balancer    Debian's nginx in front of replicas: config, process, access log   (stdlib)
    replicas    a replica group: model config files, changes one replica at a time (stdlib; clients when waiting)
    split       a target.split measured through the balancer                       (numpy)
    promote     job=promote target=tfserving: a version label moves in running groups (stdlib)
    group_rollback  job=rollback on running groups: each back to the target, replica by replica (stdlib)
    steps       target=tfserving steps, job=serve, job=rollback
    metrics     TF Serving's request metrics, their Prometheus page, MonitoringConfig  (stdlib, protobuf)
"""
