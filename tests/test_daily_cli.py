"""Issue 17, item 10: help and tables a daily user reads (flags without a type, one default per option, the
perturb options grouped by space, whole table cells in a pipe)."""

import re

from conftest import SHARED_DATA, run_cli


def invoke(*args):
    from typer.testing import CliRunner

    from advcl.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def option_line(help_text: str, option: str) -> str:
    return next(line for line in help_text.splitlines() if re.search(rf"\s{re.escape(option)}\s", line))


def test_flags_show_no_type_and_valued_options_do():
    text = invoke("train", "--help").output
    assert "<bool>" not in text
    assert "<bool>" not in invoke("export", "--help").output
    assert "--dry-run" in text and "<path>" in option_line(text, "--recipe")


def test_max_length_shows_one_default():
    for command in ("attack", "perturb"):
        line = option_line(invoke(command, "--help").output, "--max-length")
        assert line.count("default") == 1, line


def test_perturb_help_groups_options_by_space():
    text = invoke("perturb", "--help").output
    panels = {name: text.index(name) for name in ("--space text (attack the words)",
                                                  "--space embedding (attack the input embeddings)")}
    text_panel, embedding_panel = sorted(panels.values())
    for option in ("--attack", "--query-budget", "--mlm", "--shard"):
        assert text_panel < text.index(f" {option} ") < embedding_panel, option
    for option in ("--perturber", "--eps", "--step-size", "--norm"):
        assert text.index(f" {option} ") > embedding_panel, option


def test_a_table_in_a_pipe_keeps_every_cell_whole():
    done = run_cli("data")  # stdout is a pipe
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    assert str(SHARED_DATA / "ag_news" / "train.jsonl") in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) > 80
