"""Tokenizer for the nft language (src/scanner.l, simplified to what the parser needs).

Why words are lexed greedily (``10.0.0.0/8``, ``1-100``, ``echo-request``, ``::1`` are one
token): nft's scanner has dedicated patterns for addresses, ranges and dashed names, and
the meaning of such a word depends on the datatype of the left-hand side, which only the
parser/evaluator knows.  Every token keeps its line and columns for nft's caret errors."""
from __future__ import annotations

from dataclasses import dataclass

from netstack.netfilter.nft.errors import Loc, NftError

WORD = "word"
STRING = "string"
OP = "op"
NL = "newline"
EOF = "end of file"

_OPS2 = ("==", "!=", "<=", ">=", "<<", ">>")
_OPS1 = "{}()[];,|&^!@$*<>=/+"
_WORDCH = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-/%")


@dataclass
class Token:
    kind: str
    text: str
    line: int
    col: int          # 1-based column of the first character

    @property
    def loc(self) -> Loc:
        return Loc(self.line, self.col, self.col + max(1, len(self.text)) - 1)

    def is_op(self, s: str) -> bool:
        return self.kind == OP and self.text == s

    def is_word(self, s: str) -> bool:
        return self.kind == WORD and self.text == s


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raises :class:`NftError` for an unterminated string."""
    toks: list[Token] = []
    i, n, line, lstart = 0, len(text), 1, 0
    while i < n:
        ch = text[i]
        col = i - lstart + 1
        if ch in " \t\r":
            i += 1
            continue
        if ch == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2
            line += 1
            lstart = i
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch == "\n":
            toks.append(Token(NL, "\n", line, col))
            i += 1
            line += 1
            lstart = i
            continue
        if ch == '"':
            j = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            if j < 0 or (0 <= nl < j):
                raise NftError("unterminated string", Loc(line, col, col))
            toks.append(Token(STRING, text[i + 1:j], line, col))
            i = j + 1
            continue
        if text[i:i + 2] in _OPS2:
            toks.append(Token(OP, text[i:i + 2], line, col))
            i += 2
            continue
        if ch in _WORDCH and not (ch == "/" ):
            j = i
            while j < n and (text[j] in _WORDCH or (text[j] == "*" and j > i)):
                j += 1
            word = text[i:j]
            # "22:" before a map value: the colon is its own token unless the word is an
            # IPv6 address or MAC (which never end in a single ':').
            if len(word) > 1 and word.endswith(":") and not word.endswith("::"):
                toks.append(Token(WORD, word[:-1], line, col))
                toks.append(Token(OP, ":", line, col + len(word) - 1))
            elif word == ":":
                toks.append(Token(OP, ":", line, col))
            elif word == ".":
                toks.append(Token(OP, ".", line, col))
            elif word == "-":
                toks.append(Token(OP, "-", line, col))
            else:
                toks.append(Token(WORD, word, line, col))
            i = j
            continue
        if ch in _OPS1:
            toks.append(Token(OP, ch, line, col))
            i += 1
            continue
        raise NftError("syntax error, unexpected junk", Loc(line, col, col))
    toks.append(Token(EOF, "", line, n - lstart + 1))
    return toks
