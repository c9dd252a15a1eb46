"""sqlshift: what fine-tuning an LLM for Text-to-SQL gains (Spider EX) and costs (MMLU)."""

__version__ = "0.1.0"
