"""The bash subset splitter: quoting, comments, continuations, refusals with line numbers."""
from __future__ import annotations

import shlex

import pytest
from hypothesis import given, strategies as st

from netstack.cli.scenario import SplitError, split_script


def argvs(text: str) -> list[tuple[int, list[str]]]:
    return [(c.line, c.argv) for c in split_script(text)]


def test_basic_lines_comments_blank_and_shebang() -> None:
    text = "#!/bin/bash\n\n# a comment\nip link add v0 type dummy  # trailing\n  echo hi\n"
    assert argvs(text) == [(4, ["ip", "link", "add", "v0", "type", "dummy"]),
                           (5, ["echo", "hi"])]


def test_quotes_escapes_and_empty_words() -> None:
    text = """echo 'a  b' "c \\"d\\" \\\\ e" f\\ g "" '' h#i"""
    assert argvs(text) == [(1, ["echo", "a  b", 'c "d" \\ e', "f g", "", "", "h#i"])]


def test_continuation_keeps_first_line_number() -> None:
    text = "echo one\nip link add v0 \\\n   type dummy\necho three\n"
    assert argvs(text) == [(1, ["echo", "one"]), (2, ["ip", "link", "add", "v0", "type",
                                                      "dummy"]), (4, ["echo", "three"])]


def test_semicolons_split_commands_on_one_line() -> None:
    assert argvs("echo a; echo b ;echo c\n") == [(1, ["echo", "a"]), (1, ["echo", "b"]),
                                                  (1, ["echo", "c"])]


def test_multiline_single_quote_counts_lines() -> None:
    assert argvs("echo 'a\nb'\necho c\n") == [(1, ["echo", "a\nb"]), (3, ["echo", "c"])]


@pytest.mark.parametrize("text,line,what", [
    ("echo a\nip link | grep x\n", 2, "pipes"),
    ("echo a > f\n", 1, "redirections"),
    ("echo a && echo b\n", 1, "'&&'"),
    ("echo a || true\n", 1, "'||'"),
    ("echo $HOME\n", 1, "variables"),
    ('echo "$X"\n', 1, "expansions"),
    ("echo `date`\n", 1, "variables"),
    ("\n\nX=1\n", 3, "variable assignments"),
    ("for i in 1 2; do echo $i; done\n", 1, "variables"),
    ("if true\nthen echo\nfi\n", 1, "shell keyword 'if'"),
    ("ls *.pcap\n", 1, "glob"),
    ("sleep 1 &\n", 1, "background"),
    ("(echo a)\n", 1, "subshells"),
    ("echo 'unterminated\n", 1, "unterminated single quote"),
])
def test_refusals_name_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(SplitError) as ei:
        split_script(text)
    assert ei.value.line == line
    assert str(ei.value).startswith("not supported: ")
    assert what in str(ei.value)


_word = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\r"),
                max_size=12)


@given(st.lists(_word, min_size=1, max_size=6).filter(lambda ws: ws[0] != ""))
def test_shlex_quoted_words_round_trip(words: list[str]) -> None:
    """Anything quoted the POSIX way comes back as the same words (bash semantics)."""
    from netstack.cli.scenario import _KEYWORDS
    w0 = words[0]
    if w0 in _KEYWORDS or ("=" in w0 and w0.split("=")[0].rstrip("+").isidentifier()):
        return  # keywords/assignments are refused by design
    line = shlex.join(words)
    assert [c.argv for c in split_script(line + "\n")] == [words]
