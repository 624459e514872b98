"""What a Swedish page may still say in English: data, brand names and the words the help pages keep.

``english_on(page)`` reads the text a person sees, leaves out what is data (values in inputs, codes, the values
of a record or an ERP actor, messages the connector or the worker wrote) and returns the English words left, so
a browser test can assert there are none."""

from __future__ import annotations

import re
from typing import Any

# Brand and product names, and the terms the Swedish help pages keep in English.
ALLOWED = ("erpsync", "Demo ERP – Sweden", "Demo ERP", "Sync Connectors", "Sync Connector", "Django admin")
# Words that are English and never Swedish: finding one means a string was not translated.
ENGLISH = re.compile(
    r"\b(the|and|of|to|is|are|was|not|yet|now|with|this|that|from|your|you|no longer|linked|link|sync|synced|"
    r"syncing|search|failed|succeeded|field|fields|value|values|history|when|why|old|new|connect|disconnect|"
    r"create|advanced|cancel|save|users|groups|everyone|specified|define|enter|connection|settings|maintenance|"
    r"quote|remove|add|may|right|left|choose|warning|differ|differs|read-only|one-way)\b",
    re.IGNORECASE,
)
# Text that is data: what the record or the ERP holds, codes, and what the worker or the connector wrote.
DATA = "input, select, textarea, code, pre, dd, td, option, .erp-error, .erp-gone, .data"
# What is words of the UI even inside data: buttons and badges in a table's cells, and the sync's reasons (our
# sentences, which name data).
UI = "td button, td .badge, td .help, td small.muted, td.why"

_VISIBLE_TEXT = """([selector, ui]) => {
  const skip = new Set(document.querySelectorAll(selector));
  const parts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let element = node.parentElement, hidden = false;
    for (let up = element; up; up = up.parentElement) {
      if (skip.has(up) || up.hidden || up.tagName === "SCRIPT" || up.tagName === "TEMPLATE" || up.tagName === "STYLE") {
        hidden = true; break;
      }
    }
    if (hidden || !element.checkVisibility()) continue;
    parts.push(node.textContent);
  }
  for (const element of document.querySelectorAll(ui)) {
    if (element.checkVisibility()) parts.push(element.textContent);
  }
  for (const element of document.querySelectorAll("[title], [aria-label], [placeholder]")) {
    if (!skip.has(element)) parts.push(element.getAttribute("title") || "", element.getAttribute("aria-label") || "",
                                        element.getAttribute("placeholder") || "");
  }
  return parts.join(" \\n ");
}"""


def english_on(page: Any, also_allowed: tuple[str, ...] = ()) -> list[str]:
    """The English words a person reads on ``page`` that are not data, brand names or ``also_allowed``."""
    text = page.evaluate(_VISIBLE_TEXT, [DATA, UI])
    for allowed in sorted((*ALLOWED, *also_allowed), key=len, reverse=True):
        text = text.replace(allowed, " ")
    return sorted({match.group(0) for match in ENGLISH.finditer(text)})


def no_english(page: Any, language: str, also_allowed: tuple[str, ...] = ()) -> None:
    """For a walk run in each language: on the Swedish page, no English word a person reads (``english_on``)."""
    if language == "sv":
        words = english_on(page, also_allowed=also_allowed)
        assert words == [], f"English on the Swedish page {page.url}: {words}"
