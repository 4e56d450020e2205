"""GLUE pair tasks as data: the task schema, where rows come from, the DataModule and its caches."""
