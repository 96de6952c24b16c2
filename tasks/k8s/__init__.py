"""`job=k8s`: Kubernetes manifests for a served model or a distributed training config, rendered into the run
dir's `k8s/` folder and validated offline against the Kubernetes API schemas. Nothing is applied to a cluster.

Shaped like the other rooms, config -> render -> steps:

    config   what to render, read from the run's config (and its source): ServingPlan | TrainingPlan  (stdlib)
    render   plans -> manifests (plain dicts) and the YAML files kubectl applies                      (PyYAML)
    check    every manifest against the Kubernetes schemas with kubernetes-validate                   (k8s extra)
    steps    k8s_render, k8s_validate                                                                 (no TensorFlow)
"""
