"""The README's notebook example runs as written (on a small generated corpus)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def notebook_snippet() -> str:
    text = README.read_text("utf-8")
    section = text[text.index("## From a notebook") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_notebook_example_uses_only_the_package():
    code = notebook_snippet()
    imports = re.findall(r"^\s*(?:import|from)\s+\S+.*$", code, re.M)
    assert imports == ["import weibo_lstm as wl"]
    assert "lambda" not in code and "def " not in code  # no hand-written encode function


def test_readme_notebook_example_runs(tmp_path, capsys, write_csv):
    data = write_csv(tmp_path / "weibo.csv", 300)
    code = notebook_snippet()
    fit = "classifier.fit(train, val, seed=42)"
    assert 'wl.load_csv("weibo_senti_100k.csv")' in code and fit in code
    # The device's default budget, one epoch of it here.
    code = code.replace('"weibo_senti_100k.csv"', repr(str(data)))
    code = code.replace(fit, "classifier.fit(train, val, seed=42, epochs=1)")
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[[")  # the shipped model's probabilities of two texts
    history_line = next(i for i, line in enumerate(out) if line.startswith("1 {'loss'"))
    assert out[history_line + 1].startswith("[[") and "]]" in out[-1]
