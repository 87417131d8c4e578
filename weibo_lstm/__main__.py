"""`python -m weibo_lstm`: the `weibo-lstm` command."""

import sys

from weibo_lstm.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
