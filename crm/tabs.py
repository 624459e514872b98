"""The record tab hook: other apps add tabs to Company, Contact and Project pages.

The CRM knows nothing about what a tab shows. An app registers a :class:`RecordTab` for one or
more record classes (typically in its ``AppConfig.ready``); the record page lists the tabs the
current user may see, after the built-in *Details* tab, ordered by weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.utils.functional import Promise

TabView = Callable[[HttpRequest, Model], HttpResponse]
TabVisibility = Callable[[HttpRequest, Model], bool]


def _always(request: HttpRequest, record: Model) -> bool:
    return True


@dataclass(frozen=True)
class RecordTab:
    """A tab on a record page: ``view`` renders its body for one record."""

    slug: str
    label: str | Promise
    view: TabView
    is_visible: TabVisibility = field(default=_always)
    weight: int = 100


_registry: dict[type[Model], dict[str, RecordTab]] = {}


def register_tab(tab: RecordTab, *models: type[Model]) -> None:
    """Add ``tab`` to the pages of every class in ``models``; a second tab with the same slug is an error."""
    if tab.slug == "details":
        raise ValueError("'details' is the built-in tab's slug")
    for model in models:
        tabs = _registry.setdefault(model, {})
        if tab.slug in tabs and tabs[tab.slug] is not tab:
            raise ValueError(f"a tab {tab.slug!r} is already registered for {model.__name__}")
        tabs[tab.slug] = tab


def unregister_tab(slug: str, *models: type[Model]) -> None:
    for model in models:
        _registry.get(model, {}).pop(slug, None)


def visible_tabs(request: HttpRequest, record: Model) -> list[RecordTab]:
    """The registered tabs of ``record``'s class that ``request.user`` may see, in display order."""
    tabs = _registry.get(type(record), {}).values()
    return sorted((tab for tab in tabs if tab.is_visible(request, record)), key=lambda t: (t.weight, t.slug))
