"""What a worker says for people to read later, kept so that each reader reads it in their own language.

A sync runs in a worker, in the worker's language, long before anyone reads why a record failed. Beside the text
(kept as it always was: the sync log's export, filters and comparisons use it), a message is kept as data:

- ``msg(msgid, **params)``: one of our own sentences, its msgid and parameters (each a value, or a message);
- ``plural(singular, plural, count, **params)``: one with a plural form, chosen by ``count``;
- ``texts({"en": …, "sv": …}, fallback)``: words given per language, as a connector's ``user_explanation`` or
  an ERP field's labels come;
- ``lines([…])``: several messages, one per line (or joined by another separator).

``kept(text, message)`` is what a model stores beside ``text``; ``shown(text, stored)`` is the text in the
reader's language, or ``text`` itself when nothing was kept with it (rows from before, or a text set since
without a message: the message must be of that very text to be used)."""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext, ngettext

Message = dict[str, Any]


def msg(msgid: str, /, **params: Any) -> Message:
    """One of our sentences (its English msgid, marked for translation where it is written), with parameters."""
    return {"m": msgid, "p": params} if params else {"m": msgid}


def plural(singular: str, plural: str, count: int, /, **params: Any) -> Message:
    """One of our sentences with a singular and a plural form, chosen by ``count`` in the reader's language."""
    return {"m": singular, "pl": plural, "n": count, "p": params}


def texts(per_language: dict[str, str] | None, fallback: str = "") -> Message:
    """Words given per language; ``fallback`` where none fits."""
    return {"x": {k: v for k, v in (per_language or {}).items() if v}, "t": fallback}


def lines(messages: list[Message], separator: str = "\n") -> Message:
    """Several messages, one per line (or joined by ``separator``)."""
    return {"j": messages, "s": separator} if separator != "\n" else {"j": messages}


def render(message: Any, language: str | None = None) -> str:
    """The message in ``language`` (the active one by default)."""
    if language is not None:
        with translation.override(language):
            return render(message)
    if not isinstance(message, dict):
        return "" if message is None else str(message)
    if "m" in message:
        sentence = ngettext(message["m"], message["pl"], message["n"]) if "pl" in message else gettext(message["m"])
        params = message.get("p")
        return sentence % {name: render(value) for name, value in params.items()} if params else sentence
    if "x" in message:
        words: dict[str, str] = message["x"]
        language = (translation.get_language() or "en").split("-")[0].lower()
        return words.get(language) or words.get("en") or message.get("t") or next(iter(words.values()), "")
    if "j" in message:
        return str(message.get("s", "\n")).join(render(part) for part in message["j"])
    return ""


def kept(text: str, message: Message | None) -> dict[str, Any] | None:
    """What to store beside ``text`` (as the model field keeps it): the message it says, or None."""
    return {"text": text, "said": message} if message is not None and text else None


def shown(text: str, stored: dict[str, Any] | None, language: str | None = None) -> str:
    """``text`` in the reader's language (``language``, else the active one) where a message of that very text was
    kept, else as it is."""
    if stored and stored.get("text") == text and "said" in stored:
        try:
            return render(stored["said"], language)
        except (KeyError, TypeError, ValueError):  # a message its parameters do not fit: the text as it was
            return text
    return text
