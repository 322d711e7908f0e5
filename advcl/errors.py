"""Errors that the CLI turns into one line and an exit status (0 ok, 1 failed run, 2 bad input)."""


class AdvclError(Exception):
    """Something the user can fix; the message is printed as one line."""

    exit_code = 2


class BadInput(AdvclError):
    """Bad recipe, data, model path or option: exit status 2."""


class RunFailed(AdvclError):
    """A run that started and could not finish (NaN loss, disk full): exit status 1."""

    exit_code = 1


class Interrupted(AdvclError):
    """Ctrl-C: a checkpoint was saved; exit status 130 like a shell."""

    exit_code = 130
