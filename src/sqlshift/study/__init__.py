"""The study: the experiment config validated as a whole before any model loads (``config``) and the runner that
trains every run and evaluates every model point on every benchmark through the step cache (``runner``,
``sqlshift run``)."""
