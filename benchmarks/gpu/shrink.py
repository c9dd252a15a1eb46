"""Write a shrunken copy of an experiment config: a smoke test of the exact same path in a minute."""

import sys

import yaml

src, dst = sys.argv[1], sys.argv[2]
c = yaml.safe_load(open(src))
c["spider"].update(limit=16)
c["mmlu"].update(limit_per_subject=2)
for extra in c.get("mmlu_extra", []):
    extra.update(limit_per_subject=2)
for r in c["runs"]:
    r.setdefault("overrides", {}).update({"max_steps": 4, "save_steps": 2, "data.limit_n": 64})
c["allow_below_chance"] = True
yaml.safe_dump(c, open(dst, "w"))
