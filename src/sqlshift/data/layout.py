"""The data folder layout sqlshift reads, shipped with the package: `sqlshift layout` prints it, so an error can
point a wheel user at it (docs/DATA.md, which a wheel does not carry, holds the same block; a test keeps them equal).
"""

from __future__ import annotations

#: what a data error tells a user to read
HINT = "`sqlshift layout` prints the data folder layout"

LAYOUT = """\
$SQLSHIFT_DATA_DIR/
  spider/                 Spider 1.0
    dev.json              dev split: db_id, question, query (other official fields are ignored)
    train_spider.json     training split (sqlshift train): db_id, question, query
    tables.json           schemas of all databases (tables, columns, types, primary and foreign keys)
    dev_gold.sql          gold queries, "query<TAB>db_id" per line, in dev.json order (eval-sql --gold)
    database/<db_id>/<db_id>.sqlite
  mmlu/                   MMLU, the authors' CSV release
    dev/<subject>_dev.csv     5 per subject: few-shot exemplars
    val/<subject>_val.csv
    test/<subject>_test.csv   evaluation (14042 questions, 57 subjects)
  spider_syn/dev.json                  Spider-Syn: db_id, query, SpiderQuestion, SpiderSynQuestion
  spider_realistic/spider-realistic.json   Spider-Realistic: Spider format (db_id, question, query)
  spider_dk/                           Spider-DK
    Spider-DK.json        db_id, question, query, type (0 = no domain knowledge, 1-5 = the paper's T1-T5)
    tables.json           replaces Spider's for this set (adds three databases)
    database/<db_id>/<db_id>.sqlite     the three added databases; the others come from spider/database/
  sparc/, cosql/          multi-turn Text-to-SQL on the Spider databases, dev splits
    dev.json              interactions: database_id, interaction (turns with utterance, query, sql), final
    dev_gold.txt          "query<TAB>db_id" per turn, a blank line between interactions
    tables.json
  general/                general-ability benchmarks beyond MMLU (see below)
"""
