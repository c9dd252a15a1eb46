"""Dataset loaders: Spider-format (``spider``), MMLU-format (``mmlu``) and the embedded demo (``demo``)."""
