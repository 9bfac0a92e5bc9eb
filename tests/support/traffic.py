"""Clients streaming chat completions through a gateway, back to back, until stopped."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import openai


@dataclass
class Traffic:
    """`clients` threads streaming chat completions of `max_tokens` tokens (ignore_eos)."""

    endpoint: str
    key: str
    clients: int = 4
    max_tokens: int = 48
    model: str = "demo"
    done: list[tuple[str | None, int]] = field(default_factory=list)
    """(finish reason, content chunks) of each finished stream: a stream cut short ends
    without the finish reason "length"."""
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Traffic:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._loop, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def cut(self) -> list[tuple[str | None, int]]:
        """The streams that did not end with their finish reason, or carried no content."""
        return [d for d in self.done if d[0] != "length" or d[1] == 0]

    def _loop(self) -> None:
        with openai.OpenAI(
            base_url=f"{self.endpoint}/v1", api_key=self.key, max_retries=0, timeout=60
        ) as chat:
            while not self._stop.is_set():
                try:
                    self.done.append(self._one(chat))
                except openai.OpenAIError as exc:
                    self.errors.append(repr(exc))

    def _one(self, chat: openai.OpenAI) -> tuple[str | None, int]:
        stream = chat.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": "Tell me about Python modules."}],
            max_tokens=self.max_tokens,
            stream=True,
            extra_body={"ignore_eos": True},
        )
        finish, chunks = None, 0
        for chunk in stream:
            for choice in chunk.choices:
                chunks += bool(choice.delta.content)
                finish = choice.finish_reason or finish
        return finish, chunks
