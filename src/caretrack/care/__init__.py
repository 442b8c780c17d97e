"""Care packages, their carers and tasks, and the carers' task completions."""
