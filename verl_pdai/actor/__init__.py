"""verl's own actor on a machine without an accelerator: a CPU platform for verl's platform registry
(``cpu_platform``), the config it needs (``settings``), and the actor worker in this process with a weight sync to
the rollout's model (``in_process``)."""
