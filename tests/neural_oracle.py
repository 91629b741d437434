"""An oracle language model for tests: it knows a recorded state tree and scores the true next token highest.

It plays the LanguageModel protocol of neural.predict: it follows the actions written into the running
text, applies each to its current node of the tree (StateTree.apply, the ground truth), and then favours,
token by token, the canonical tokens of the true next state (serialize_state) followed by <|action|>.
A Predictor driven by it must reproduce the tree exactly; any slip in constrained decoding, the forced
source line, <|same|> diffs, cache cropping or window restarts shows up as a wrong state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neural.textformat import ACTION, STATE, parse_action, serialize_state
from neural.trajectory import StateTree


class OracleModel:
    def __init__(self, tree: StateTree, tokenizer: Any, context: int = 512) -> None:
        self.tree = tree
        self.tokenizer = tokenizer
        self.context = context
        self.node = 0
        self.vocab = len(tokenizer)
        self.state_id = tokenizer.convert_tokens_to_ids(STATE)
        self.action_id = tokenizer.convert_tokens_to_ids(ACTION)
        self.ids: list[int] = []
        self.expected: list[int] = []  # the true state's tokens after <|state|>, then <|action|>
        self.expected_from = 0  # position in `ids` of the first of them
        self.feeds = 0

    @property
    def length(self) -> int:
        return len(self.ids)

    def reset(self) -> None:
        self.ids = []
        self.expected = []

    def crop(self, length: int) -> None:
        del self.ids[length:]

    def feed(self, ids: Sequence[int]) -> list[float]:
        self.feeds += 1
        for token in ids:
            self.ids.append(token)
            if token == self.state_id and self._follows_action():
                self._advance()
        logits = [0.0] * self.vocab
        position = len(self.ids) - self.expected_from
        if self.expected and 0 <= position < len(self.expected):
            logits[self.expected[position]] = 10.0
        return logits

    def _follows_action(self) -> bool:
        return self.action_id in self.ids[:-1] and self.ids[:-1][::-1].index(self.action_id) < (
            self.ids[:-1][::-1].index(self.state_id) if self.state_id in self.ids[:-1] else len(self.ids)
        )

    def _advance(self) -> None:
        last_action = len(self.ids) - 2 - self.ids[:-1][::-1].index(self.action_id)
        text = self.tokenizer.decode(self.ids[last_action + 1 : -1])
        action = parse_action(text)
        target = self.tree.apply(self.node, action)
        if target is None:
            self.expected = []
            return
        previous = self.tree.states[self.node]
        self.node = target
        body = serialize_state(self.tree.code, self.tree.states[target], previous, action)[len(STATE) :]
        self.expected = [*list(self.tokenizer(body, add_special_tokens=False)["input_ids"]), self.action_id]
        self.expected_from = len(self.ids)
