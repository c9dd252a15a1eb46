"""Records the top-level name of every module a Python process looks up, one line each, in $SQLSHIFT_IMPORT_LOG.

On the path only for benchmarks/gpu/smoke.sh: child processes (vLLM's engine core, training) inherit it, so the
list covers every process of a run; benchmarks/gpu/vllm_wheels_used.py maps the names to the wheels to carry."""

import os
import sys

_LOG = os.environ.get("SQLSHIFT_IMPORT_LOG")


class _Spy:
    """A meta-path finder that finds nothing: it only writes down each new top-level name asked for."""

    seen: set = set()

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201
        top = name.partition(".")[0]
        if top not in self.seen:
            self.seen.add(top)
            with open(_LOG, "a") as fh:
                fh.write(top + "\n")
        return None


if _LOG:
    sys.meta_path.insert(0, _Spy())
