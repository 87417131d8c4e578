"""The `weibo-lstm` command line: `main` (the parser, error mapping), one module per
command (`train`, `pretrain`, `evaluate`, `predict`, `export`), `common` (what they
share) and `flags` (flags from the config dataclasses). Nothing in the package imports it."""
