"""Fine-tuning: the strict training config and presets (``config``), training rows and replay (``data``), and the
trl/peft trainer with resume and divergence guards (``trainer``, ``sqlshift train``)."""
