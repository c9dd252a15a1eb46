"""Scorers: execution accuracy (``execution``), MMLU (``mmlu``), statistics (``stats``).

``deepeval_metric`` (EX as a DeepEval metric) is not imported here: it needs the optional extra
``sqlshift[deepeval]``, and ``sqlshift.metrics`` must import without it.
"""
