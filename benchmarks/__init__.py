"""The product benchmarks, run as modules from the repository root
(``python -m benchmarks.accuracy``); results and how to reproduce them: README.md here."""
