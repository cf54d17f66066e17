import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_library_example_runs():
    section = README.read_text().split("## Library example", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})


def test_readme_gives_the_commands_ci_runs():
    text = README.read_text()
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "accelerate launch recipes/wmt_en_de.py --preset demo" in text
    assert "python -m pytest -q" in text and "python -m pytest -q" in ci
