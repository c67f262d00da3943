"""The "Bad input" table (README.md and docs/reliability.md) and tests/reliability/test_bad_input.py agree.

A reader follows a row to the test it names; that test must exist, and every test there must be some
row's, so that the table lists everything the file checks.
"""

import ast
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parent / "test_bad_input.py"


def bad_input_rows(path, heading):
    """The table rows under `heading`, each a list of its cells; the header and rule rows left out."""
    text = path.read_text(encoding="utf-8")
    section = text[text.index(f"\n{heading}\n"):]
    lines = section.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])])  # not at "\|"
    assert table[0] == ["input", "behaviour", "test"] and all(set(cell) == {"-"} for cell in table[1]), table[:2]
    return table[2:]


def named_tests(rows):
    """Test names per row; "same" repeats the previous row's first test."""
    names = []
    for cells in rows:
        named = re.findall(r"`(test_\w+)`", cells[-1])
        assert named or cells[-1].startswith("same"), cells
        if cells[-1].startswith("same"):
            named = names[-1][:1] + named
        names.append(named)
    return names


def defined_tests():
    tree = ast.parse(TESTS.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_readme_and_docs_carry_the_same_table():
    readme = bad_input_rows(REPO_ROOT / "README.md", "### Bad input")
    docs = bad_input_rows(REPO_ROOT / "docs" / "reliability.md", "## Bad input")
    assert readme == docs


def test_every_named_test_exists_and_every_test_is_named():
    named = {name for row in named_tests(bad_input_rows(REPO_ROOT / "README.md", "### Bad input")) for name in row}
    defined = defined_tests()
    assert named - defined == set(), "the README names tests that do not exist"
    assert defined - named == set(), "tests/reliability/test_bad_input.py has tests no row names"


def test_the_table_parser_reads_a_table_as_written(tmp_path):
    """The parser itself, on a small table written by hand: an escaped pipe in a cell, "same" rows."""
    page = tmp_path / "page.md"
    page.write_text(
        "# x\n\n### Bad input\n\nprose\n\n| input | behaviour | test |\n|---|---|---|\n"
        "| a | error `X \\| Y` | `test_a`, `test_b` |\n| b | same error | same |\n| c | d | same, `test_c` |\n\nafter\n"
    )
    rows = bad_input_rows(page, "### Bad input")
    assert [cells[0] for cells in rows] == ["a", "b", "c"] and rows[0][1] == "error `X \\| Y`"
    assert named_tests(rows) == [["test_a", "test_b"], ["test_a"], ["test_a", "test_c"]]
