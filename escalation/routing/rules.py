"""Which team an escalation goes to: the first active rule whose conditions all hold, else the
conversation's team, the channel's default team, then the default team of the routing settings.

A rule's conditions read what is known when the conversation escalates: the detector's reason,
its topics (plus a few routing topics, such as orders, read from the customer's words), the
channel kind and the customer's language (guessed from their messages; see ``guess_language``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .models import RoutingRule, RoutingSettings

# Routing-only topics the detector does not score; matched on the customer's own words.
TOPIC_WORDS = {
    "orders": re.compile(
        r"\b(?:orders?|ordered|delivery|delivered|deliver|shipping|shipped|shipment|parcel|"
        r"package|tracking|courier|pedido|envio|entrega|paquete|encomenda|commande|livraison|"
        r"colis|bestellung|lieferung|paket|sendung|ordine|spedizione|consegna|pacco|"
        r"bestelling|levering|zamowienie|przesylka|siparis|kargo)\b"
    ),
}

# A few of the most frequent words per language: enough to tell the Latin-script languages the
# detector knows apart in a sentence or two. Other scripts are told by their letters.
STOPWORDS = {
    "en": "the and you is are my to it not have this was for with that please can",
    "es": "el la los las que de y es no mi por para con una esto pero como favor",
    "pt": "o os as que de e não nao meu minha por para com uma isso mas você voce",
    "fr": "le la les que de et est pas mon ma pour avec une ce mais vous je",
    "de": "der die das und ist nicht mein meine ich sie mit ein eine aber bitte",
    "it": "il lo la che di e è non mio mia per con una questo ma sono",
    "nl": "de het een en is niet mijn ik je met voor maar dat van",
    "pl": "i nie jest to się sie na w z że ze mój moj moja jak",
    "tr": "ve bir bu için icin değil degil ben sen ile ama çok cok",
}
_STOP = {lang: set(words.split()) for lang, words in STOPWORDS.items()}
_WORD = re.compile(r"\w+", re.UNICODE)
SCRIPTS = (
    ("HANGUL", "ko"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("CJK", "zh"),
    ("ARABIC", "ar"),
    ("CYRILLIC", "ru"),
    ("DEVANAGARI", "hi"),
    ("GREEK", "el"),
    ("HEBREW", "he"),
    ("THAI", "th"),
)


def guess_language(texts: list[str]) -> str:
    """A two-letter code for the language of the customer's messages, or "" when unsure.
    Letters decide for non-Latin scripts (kana before Han, so Japanese is not read as
    Chinese); stopwords decide among Latin-script languages."""
    text = " ".join(texts)[-2000:]
    counts: dict[str, int] = {}
    for char in text:
        if char.isalpha() and ord(char) > 0x24F:
            name = unicodedata.name(char, "")
            for prefix, lang in SCRIPTS:
                if name.startswith(prefix):
                    counts[lang] = counts.get(lang, 0) + 1
                    break
    if counts:
        if counts.get("ja"):
            return "ja"
        return max(counts, key=counts.get)
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {lang: sum(1 for w in words if w in stop) for lang, stop in _STOP.items()}
    best = max(scores, key=scores.get)
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1]:
        return ""
    return best


def routing_topics(signals: dict, texts: list[str]) -> set[str]:
    """The detector's topics plus the routing topics found in the customer's words."""
    topics = set(((signals or {}).get("complexity") or {}).get("topics") or [])
    folded = _fold(" ".join(texts))
    topics.update(topic for topic, regex in TOPIC_WORDS.items() if regex.search(folded))
    return topics


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class RoutingFacts:
    reason: str
    topics: frozenset[str]
    channel_kind: str
    language: str


def rule_matches(rule: RoutingRule, facts: RoutingFacts) -> bool:
    return (
        (not rule.reasons or facts.reason in rule.reasons)
        and (not rule.topics or bool(facts.topics & set(rule.topics)))
        and (not rule.channel_kinds or facts.channel_kind in rule.channel_kinds)
        and (not rule.languages or facts.language in rule.languages)
    )


def choose_team(*, conversation, facts: RoutingFacts, load_settings=RoutingSettings.load):
    """``(team, rule)``: the first matching active rule's team, else the conversation's team,
    the channel's default team or the default team (rule None). Two queries at most (the
    settings through ``load_settings``)."""
    for rule in RoutingRule.objects.filter(is_active=True).select_related("team"):
        if rule_matches(rule, facts):
            return rule.team, rule
    team = conversation.team or conversation.channel.default_team
    if team is None:
        team = load_settings().default_team
    return team, None
