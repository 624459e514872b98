"""The UI is complete in English and Swedish, and users can switch between them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from django.urls import reverse

from .conftest import ROOT, require_service
from .factories import CompanyFactory

CATALOGUE = ROOT / "locale" / "sv" / "LC_MESSAGES" / "django.po"


def test_the_swedish_catalogue_translates_every_message_with_matching_placeholders() -> None:
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle)
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert not untranslated and not fuzzy, (untranslated, fuzzy)
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalogue.check()]
    assert not problems, problems


def test_sync_connector_stays_in_english_in_swedish_as_the_original_help_has_it() -> None:
    """The original's Swedish help keeps "Sync Connector" in English, set against "ERP-koppling": a Swedish word
    for it would read like "ERP-koppling" and blur the two."""
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle)

    def text(value: object) -> str:
        return " ".join(value) if isinstance(value, list | tuple) else str(value or "")

    translated = [(text(m.id), text(m.string)) for m in catalogue if m.id]
    assert [swedish for _english, swedish in translated if "synkkoppling" in swedish.lower()] == []
    named = [swedish for english, swedish in translated if "Sync Connector" in english]
    assert named and all("Sync Connector" in swedish for swedish in named)


def test_every_marked_string_in_the_code_is_in_the_swedish_catalogue(tmp_path: Path) -> None:
    require_service(shutil.which("xgettext") is not None, "GNU gettext (xgettext)")
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", "var", ".git", "__pycache__", "*.mo"))
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "--locale", "sv", "--ignore", "tests/*"],
        cwd=copy,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "1"},
        check=True,
        capture_output=True,
    )
    with (copy / "locale" / "sv" / "LC_MESSAGES" / "django.po").open("rb") as handle:
        extracted = read_po(handle)
    missing = sorted(m.id for m in extracted if m.id and not m.string)
    assert not missing, f"run `make messages` and translate: {missing}"


@pytest.mark.django_db
def test_a_user_switches_the_interface_to_swedish(client: Any, licensed_user: Any) -> None:
    CompanyFactory.create(name="Nordträ AB")
    client.force_login(licensed_user)
    english = client.get(reverse("crm:company-list")).content.decode()
    assert "Companies" in english and "New company" in english
    response = client.post(reverse("set_language"), {"language": "sv", "next": reverse("crm:company-list")})
    assert response.status_code == 302
    swedish = client.get(reverse("crm:company-list")).content.decode()
    assert '<html lang="sv">' in swedish
    assert "Nytt företag" in swedish and "Inställningar och underhåll" not in swedish  # no admin right
    assert "Logga ut" in swedish and "Nordträ AB" in swedish
