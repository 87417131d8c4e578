"""Layer 8, jobs: whole runs behind the command line and the example.

`train` (`RunConfig`, `run_training`: data → task → trainer → report), `pretrain`
(`PretrainConfig`, `run_pretraining`: unlabelled text → an encoder), `report` (the
report CSV, curves, classification report).
"""
