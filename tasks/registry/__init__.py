"""MLflow's model registry: versions registered from runs, aliases moved (job=promote), `models:/…` sources.

Shaped like tfrun.tasks.tfserving, what a reference is → talking to the registry → the steps:

    config   models:/NAME/VERSION|@ALIAS parsed, MLflow's alias rules, which store   (stdlib; tasks.core)
    client   MlflowClient: register, resolve, set an alias, bring a version here     (mlflow, in functions)
    steps    job=promote's check and step, a deploy source brought here             (client)

The runner calls in (tfrun.runner.tracking for track.register, tfrun.runner.config for sources and job=promote);
nothing here imports the runner, and mlflow is imported inside functions only.
"""
