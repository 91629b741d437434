"""Realistic mix: tokenise, parse and evaluate small arithmetic programs with a tiny interpreter."""

from __future__ import annotations

import sys

DEFAULT_SIZE = 300

Node = tuple


def make_source(i: int) -> str:
    # Deterministic little programs: assignments, then an expression over them.
    return (
        f"a = {i % 9 + 1}; b = a * {i % 5 + 2} - 3; c = (a + b) * (b - {i % 4}) / 2; "
        f"d = c - a * (b + {i % 7}) + (c / (a + 1)); a + b * c - d"
    )


def tokenize(src: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(src):
        ch = src[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit():
            j = i
            while j < len(src) and src[j].isdigit():
                j += 1
            tokens.append(src[i:j])
            i = j
        elif ch.isalpha():
            j = i
            while j < len(src) and src[j].isalnum():
                j += 1
            tokens.append(src[i:j])
            i = j
        else:
            tokens.append(ch)
            i += 1
    return tokens


class Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def program(self) -> list[Node]:
        stmts = [self.statement()]
        while self.peek() == ";":
            self.take()
            stmts.append(self.statement())
        return stmts

    def statement(self) -> Node:
        if self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1] == "=":
            name = self.take()
            self.take()
            return ("set", name, self.expr())
        return ("expr", self.expr())

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = ("bin", op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.atom()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = ("bin", op, node, self.atom())
        return node

    def atom(self) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.expr()
            self.take()
            return node
        if tok.isdigit():
            return ("num", int(tok))
        return ("var", tok)


def evaluate(node: Node, env: dict[str, float]) -> float:
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "var":
        return env[node[1]]
    left = evaluate(node[2], env)
    right = evaluate(node[3], env)
    op = node[1]
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    return left / right if right else 0.0


def run(src: str) -> float:
    env: dict[str, float] = {}
    result = 0.0
    for stmt in Parser(tokenize(src)).program():
        if stmt[0] == "set":
            env[stmt[1]] = evaluate(stmt[2], env)
        else:
            result = evaluate(stmt[1], env)
    return result


def main(size: int | None = None) -> float:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    total = 0.0
    for i in range(n):
        total += run(make_source(i))
    print(f"interp n={n} total={total:.6f}")
    return total


if __name__ == "__main__":
    main()
