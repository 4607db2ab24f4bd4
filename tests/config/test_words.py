"""Words a subscriber or a merchant's developer reads in error messages (issue 20): every ApplicationError says
its message in the language asked for, as one clean sentence (no doubled full stop, no Korean in English)."""

from __future__ import annotations

import importlib
import re

import pytest
from django.utils import translation

from billing.errors import ApplicationError

HANGUL = re.compile(r"[가-힣]")
# Modules that define ApplicationError subclasses (imported so that every subclass is seen).
ERROR_MODULES = (
    "billing.errors",
    "subscriptions.errors",
    "billing.api.errors",
    "subscriptions.api.errors",
    "notices.errors",
)


def every_error() -> list[type[ApplicationError]]:
    for name in ERROR_MODULES:
        importlib.import_module(name)
    seen, stack = [], list(ApplicationError.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return sorted(seen, key=lambda cls: cls.__name__)


def test_every_error_module_defines_some_errors():
    assert len(every_error()) >= 20


@pytest.mark.parametrize("cls", every_error(), ids=lambda cls: cls.__name__)
def test_an_error_message_is_one_clean_sentence_in_korean_and_in_english(cls):
    with translation.override("ko"):
        korean = str(cls.default_message)
    with translation.override("en"):
        english = str(cls.default_message)

    assert HANGUL.search(korean), f"{cls.__name__} has no Korean message: {korean!r}"
    assert not HANGUL.search(english), f"{cls.__name__} shows Korean in English: {english!r}"
    for message in (korean, english):
        assert ".." not in message and "  " not in message, message
        assert message == message.strip() and message[-1] in ".?!)", message
