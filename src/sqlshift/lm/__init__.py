"""The model side: the ``LM`` contract and its request types (``api``), the backends behind it (``hf``:
transformers + peft; ``vllm``: one vLLM engine), and model loading (``models``: specs, the embedded default,
adapters, end-of-turn stop ids). Nothing here knows about benchmarks, training or the study."""
