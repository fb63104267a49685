"""Pattern 4 (weekly fairness audit) steps: list the production models, audit one model (fan-out), collect the
results and refresh the model cards (fan-in). ``metrics`` is the numpy engine, ``card`` renders a model card."""
