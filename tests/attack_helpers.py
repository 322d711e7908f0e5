"""What the text-attack tests share: an attack that stops like Ctrl-C after n examples, and rows without timings."""

from __future__ import annotations


def without_time(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


class InterruptAfter:
    """An attack that runs the real one ``n`` times, then behaves like Ctrl-C; counts what it attacked."""

    def __init__(self, attack, n):
        self.inner, self.n, self.attacked = attack, n, []

    def attack(self, example, label):
        if len(self.attacked) == self.n:
            raise KeyboardInterrupt
        self.attacked.append(example)
        return self.inner.attack(example, label)
