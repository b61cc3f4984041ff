"""Customer-facing system texts: languages, plural forms, fallback, overrides, validation."""

import pytest

from crm import customer_texts
from crm import services as crm_services
from crm.errors import InvalidMessage


@pytest.mark.parametrize(
    ("language", "minutes", "phrase"),
    [
        ("en", 1, "about 1 minute"),
        ("en", 4, "about 4 minutes"),
        ("es", 1, "aproximadamente 1 minuto"),
        ("es", 2, "aproximadamente 2 minutos"),
        ("pt", 1, "cerca de 1 minuto"),
        ("pt", 5, "cerca de 5 minutos"),
        ("fr", 0, "environ 0 minute"),  # French says 0 in the singular
        ("fr", 1, "environ 1 minute"),
        ("fr", 2, "environ 2 minutes"),
        ("de", 1, "etwa 1 Minute"),
        ("de", 3, "etwa 3 Minuten"),
        ("it", 1, "circa 1 minuto"),
        ("it", 7, "circa 7 minuti"),
    ],
)
def test_the_wait_has_the_languages_plural_form(language, minutes, phrase):
    assert customer_texts.wait_phrase(minutes, language) == phrase


def test_every_kind_exists_in_the_six_languages_with_only_its_placeholders():
    assert customer_texts.LANGUAGES == ("en", "es", "pt", "fr", "de", "it")
    for kind in customer_texts.KINDS:
        assert set(customer_texts.DEFAULTS[kind.code]) == set(customer_texts.LANGUAGES)
        for language in customer_texts.LANGUAGES:
            text = customer_texts.DEFAULTS[kind.code][language]
            assert customer_texts.validate(kind.code, text) == text


def test_one_minute_is_no_longer_one_minutes(db):
    assert customer_texts.render("handoff", "en", wait_minutes=1) == (
        "I'm connecting you with a member of our team. The wait is about 1 minute."
    )
    assert customer_texts.render("queue_place", "en", position=3, wait_minutes=4) == (
        "You are number 3 in the queue — about 4 minutes."
    )
    assert customer_texts.render("queue_place", "de", position=1, wait_minutes=1) == (
        "Sie sind Nummer 1 in der Warteschlange — etwa 1 Minute."
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("es", "Ahora hablas con Alex"),
        ("pt-BR", "Agora está a falar com Alex"),
        ("FR", "Vous parlez maintenant avec Alex"),
        ("de_AT", "Sie sprechen jetzt mit Alex"),
        ("it", "Ora stai parlando con Alex"),
        ("nl", "Now speaking with Alex"),  # not one of the six: English
        ("", "Now speaking with Alex"),  # unsure: English
        (None, "Now speaking with Alex"),
    ],
)
def test_the_detected_language_picks_the_text_and_english_is_the_fallback(db, language, expected):
    assert customer_texts.render("takeover", language, agent_name="Alex") == expected


def test_an_override_replaces_the_default_of_its_language_only(db):
    crm_services.update_customer_texts(language="en", texts={"closing": "Bye from {agent_name}!"})
    crm_services.update_customer_texts(language="es", texts={"closing": "¡Adiós, {agent_name}!"})
    assert customer_texts.render("closing", "en", agent_name="Alex") == "Bye from Alex!"
    assert customer_texts.render("closing", "es", agent_name="Alex") == "¡Adiós, Alex!"
    # German has no override: its own default, not the English override
    assert (
        customer_texts.render("closing", "de", agent_name="Alex")
        == (customer_texts.DEFAULTS["closing"]["de"])
    )
    # a language outside the six falls back to English, override included
    assert customer_texts.render("closing", "nl", agent_name="Alex") == "Bye from Alex!"
    # emptying the text, or saving the default, removes the override
    crm_services.update_customer_texts(language="en", texts={"closing": ""})
    crm_services.update_customer_texts(
        language="es", texts={"closing": customer_texts.DEFAULTS["closing"]["es"]}
    )
    assert customer_texts.overrides("en") == {} and customer_texts.overrides("es") == {}


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("handoff", "Wait {minutes}", "unknown placeholders: {minutes}"),
        ("takeover", "Hi {agent}", "Allowed: {agent_name}"),
        ("back_in_queue", "Back {position}", "Allowed: none"),
        ("takeover", "Hi {agent_name!r}", "unknown placeholders: {agent_name…}"),
        ("takeover", "Hi {}", "unknown placeholders: {}"),
        ("takeover", "Hi {0}", "unknown placeholders: {0}"),
        ("closing", "Bye {agent_name", "brace without its pair"),
        ("closing", "   ", "cannot be empty"),
        ("closing", "x" * 1001, "longer than 1000"),
        ("nonsense", "Hi", "Unknown message kind"),
    ],
)
def test_validation_names_what_is_wrong(kind, text, message):
    with pytest.raises(InvalidMessage) as raised:
        customer_texts.validate(kind, text)
    assert message in raised.value.message


def test_a_wrong_language_or_kind_saves_nothing(db):
    with pytest.raises(InvalidMessage, match="Unknown language"):
        crm_services.update_customer_texts(language="nl", texts={"closing": "Doei"})
    with pytest.raises(InvalidMessage, match="Unknown message kind"):
        crm_services.update_customer_texts(language="en", texts={"goodbye": "Bye"})
    assert customer_texts.overrides("en") == {}
