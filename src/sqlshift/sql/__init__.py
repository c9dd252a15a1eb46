"""Text-to-SQL pieces every stage shares: the sandbox that runs untrusted SQL (``sandbox`` parent side,
``worker`` inside the worker process), Execution Accuracy (``execution``, its verdicts saved as they arrive by
``verdict_log``) and ``eval-sql`` (``eval_sql``), Spider hardness,
prediction files (reading and the official format), schema prompts for training and inference (``prompts``), and
SQL extraction from a model's answer (``extract``). ``deepeval_metric`` needs the optional deepeval extra."""
