"""Scorers: execution accuracy (``execution``), MMLU (``mmlu``), statistics (``stats``)."""
