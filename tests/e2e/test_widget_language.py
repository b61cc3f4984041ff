"""The widget's own words (buttons, placeholders, header, status) follow the customer's browser:
a Brazilian browser gets Portuguese, a language the widget has no words for gets English, and
``data-language`` on the script tag wins over the browser."""

import pytest

from tests.factories import AssistantFactory, ChannelFactory, TeamFactory

from .conftest import assert_page_clean

pytestmark = [pytest.mark.browser]


@pytest.fixture
def channel(transactional_db):
    return ChannelFactory(
        kind="website",
        key="shop",
        assistant=AssistantFactory(handoff_enabled=True),
        default_team=TeamFactory(name="Support"),
    )


def widget_words(page) -> dict:
    page.goto("/widget/demo/?channel=shop")
    page.click(".le-launch")
    page.wait_for_selector(".le-input", state="visible")
    return {
        "lang": page.locator(".le").get_attribute("lang"),
        "title": page.locator(".le-head b").inner_text(),
        "placeholder": page.locator(".le-input").get_attribute("placeholder"),
        "send": page.locator(".le-send").inner_text(),
        "status": page.locator(".le-status").inner_text(),
    }


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "pt-BR",
            {
                "lang": "pt",
                "title": "Fale connosco",
                "placeholder": "Escreva a sua mensagem…",
                "send": "Enviar",
                "status": "O nosso assistente",
            },
        ),
        (
            "ja-JP",
            {
                "lang": "en",
                "title": "Chat with us",
                "placeholder": "Type your message…",
                "send": "Send",
                "status": "Our assistant",
            },
        ),
    ],
)
def test_the_widget_speaks_the_browsers_language(open_page, channel, locale, expected):
    customer = open_page("customer", locale=locale)
    assert widget_words(customer) == expected
    assert_page_clean(customer)


def test_data_language_wins_over_the_browser(open_page, channel):
    customer = open_page("customer", locale="de-DE")
    customer.goto("/widget/demo/?channel=shop")
    # The site owner says which language the page is in: the widget follows the tag
    customer.evaluate(
        """() => {
            window.__liveEscalationWidget = false;
            const old = '[data-live-escalation], script[data-channel]';
            document.querySelectorAll(old).forEach(n => n.remove());
            const tag = document.createElement('script');
            tag.src = '/widget.js';
            tag.dataset.channel = 'shop';
            tag.dataset.language = 'fr';
            document.body.appendChild(tag);
        }"""
    )
    customer.wait_for_selector(".le-launch")
    customer.click(".le-launch")
    customer.wait_for_selector(".le-send:has-text('Envoyer')")
    assert customer.locator(".le-input").get_attribute("placeholder") == "Écrivez votre message…"
    assert_page_clean(customer)
