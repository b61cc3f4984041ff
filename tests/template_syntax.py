"""What a person must never see: Django template syntax that reached the page (a two-line
``{# #}`` comment, a tag or variable left unrendered). Shared by the template sweep and the
browser tests."""

import re

# {{ }} {% %} {# #}: any opening or closing delimiter is a leak (a broken tag leaves one half).
TEMPLATE_SYNTAX = re.compile(r"\{[{%#]|[}%#]\}")


def template_syntax_in(text: str) -> list[str]:
    """The leaked delimiters in ``text``, each with a little context; [] when clean."""
    return [
        text[max(0, found.start() - 40) : found.end() + 40].replace("\n", " ")
        for found in TEMPLATE_SYNTAX.finditer(text)
    ]


def assert_no_template_syntax(text: str, where: str) -> None:
    leaks = template_syntax_in(text)
    assert not leaks, f"template syntax reached {where}: {leaks[:3]}"
