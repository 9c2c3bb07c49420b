"""The errors a user's input causes, under one base class.

Everything a user hands rltransfer (a flag, a suite or preset file, a run folder, a
checkpoint, a game spec, an opponent name) is checked, and what does not fit raises a
:class:`UserError` whose message says what was wrong and what would fit. The command line
prints those in one line (exit status 2); any other exception is a bug in rltransfer and
keeps its traceback. Each subclass also derives from the builtin exception a Python caller
would expect (``ValueError``, ``KeyError``, ...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of the errors caused by what a user gave (see the module docstring)."""

    def __str__(self) -> str:
        # KeyError's own str() quotes its message; every UserError reads as its message
        return str(self.args[0]) if self.args else ""


class UnknownGameError(UserError, KeyError):
    """A game id that no registered game has."""


class GameOptionError(UserError, ValueError):
    """A game option the game does not take, or a value it does not allow."""


class UnknownTaskError(UserError, KeyError):
    """A game or task name that a run does not play, or plays more than once."""


class UnknownPlayerError(UserError, ValueError):
    """An opponent that is neither a player name nor a run folder."""


class LadderFileError(UserError, ValueError):
    """A ladder's progress file (``rltransfer ladder --json PATH --resume``) that cannot be
    read, or that was written by a ladder with other settings."""
