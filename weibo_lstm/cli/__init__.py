"""The `weibo-lstm` command line: argument parsing only; nothing in the package imports it."""
