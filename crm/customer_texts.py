"""Every system text the customer reads, in their language: the one place they are produced.

Built-in defaults exist for the six languages the assistant and the detector speak (en, es,
pt, fr, de, it); a manager's override (``crm.CustomerText``, edited in Settings) replaces the
default of one kind in one language. ``render`` picks, for the conversation's detected
language: that language's override, else its built-in default; a language outside the six falls
back to English (override first). Placeholders are ``{name}``; each kind allows a fixed set and
an override naming any other is refused (``validate``).

``{wait}`` is a phrase with the language's plural form ("about 1 minute", "about 4 minutes",
"environ 1 minute", "etwa 4 Minuten"), so no text has to pluralise a bare number.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .errors import InvalidMessage

LANGUAGES = ("en", "es", "pt", "fr", "de", "it")
FALLBACK = "en"
LANGUAGE_NAMES = {
    "en": gettext_lazy("English"),
    "es": gettext_lazy("Spanish"),
    "pt": gettext_lazy("Portuguese"),
    "fr": gettext_lazy("French"),
    "de": gettext_lazy("German"),
    "it": gettext_lazy("Italian"),
}
MAX_CHARS = 1000


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    when: str
    placeholders: tuple[str, ...]


KINDS = (
    Kind(
        "handoff",
        gettext_lazy("Handoff"),
        gettext_lazy("A conversation is handed to the team."),
        ("wait", "wait_minutes"),
    ),
    Kind(
        "handoff_reopens",
        gettext_lazy("Handoff, closing before the customer's turn"),
        gettext_lazy(
            "Instead of the handoff text when the team is open but closes before the wait runs out."
        ),
        ("reopens",),
    ),
    Kind(
        "queue_place",
        gettext_lazy("Place in the queue"),
        gettext_lazy("The place and the estimate moved (WhatsApp, Instagram, the widget)."),
        ("position", "wait", "wait_minutes"),
    ),
    Kind(
        "queue_place_reopens",
        gettext_lazy("Place in the queue, after a closure"),
        gettext_lazy(
            "Instead of the place in the queue while the wait runs over the team's closed "
            "hours (the widget; WhatsApp and Instagram once the team is open)."
        ),
        ("position", "reopens"),
    ),
    Kind(
        "after_hours",
        gettext_lazy("After hours"),
        gettext_lazy("A conversation is handed over while the team is away."),
        ("team", "reopens"),
    ),
    Kind(
        "follow_up_email",
        gettext_lazy("Email left after hours"),
        gettext_lazy("A customer waiting after hours typed an email address for the follow-up."),
        ("email",),
    ),
    Kind(
        "back_in_queue",
        gettext_lazy("Back in the queue"),
        gettext_lazy("An agent puts the conversation back in the queue."),
        (),
    ),
    Kind(
        "takeover",
        gettext_lazy("Takeover"),
        gettext_lazy("An agent takes the conversation over."),
        ("agent_name",),
    ),
    Kind(
        "agent_greeting",
        gettext_lazy("Agent's greeting"),
        gettext_lazy("Sent as the agent's first words after the takeover."),
        ("agent_name",),
    ),
    Kind(
        "hand_back",
        gettext_lazy("Back to the assistant"),
        gettext_lazy("The agent hands the conversation back to the assistant."),
        ("agent_name",),
    ),
    Kind(
        "closing",
        gettext_lazy("Closing message"),
        gettext_lazy("The agent resolves or closes the conversation."),
        ("agent_name",),
    ),
    Kind(
        "resolved_status",
        gettext_lazy("Widget status after Resolve"),
        gettext_lazy(
            "The widget's status line once the agent resolved (it no longer says who "
            "the customer is speaking with)."
        ),
        ("agent_name",),
    ),
    Kind(
        "rating_prompt",
        gettext_lazy("Rating prompt (widget)"),
        gettext_lazy("Shown above the 1–5 buttons after the closing message."),
        ("agent_name",),
    ),
    Kind(
        "rating_reply_prompt",
        gettext_lazy("Rating prompt (WhatsApp, Instagram)"),
        gettext_lazy("Sent after the closing message; the customer replies with a digit."),
        ("agent_name",),
    ),
    Kind(
        "rating_thanks",
        gettext_lazy("Thanks for the rating"),
        gettext_lazy("Sent when the customer has rated."),
        ("score",),
    ),
)
KIND_BY_CODE = {kind.code: kind for kind in KINDS}

DEFAULTS: dict[str, dict[str, str]] = {
    "handoff": {
        "en": "I'm connecting you with a member of our team. The wait is {wait}.",
        "es": "Te estoy poniendo en contacto con una persona de nuestro equipo. "
        "La espera es de {wait}.",
        "pt": "Estou a ligar você a uma pessoa da nossa equipa. A espera é de {wait}.",
        "fr": "Je vous mets en relation avec un membre de notre équipe. L'attente est d'{wait}.",
        "de": "Ich verbinde Sie mit jemandem aus unserem Team. Die Wartezeit beträgt {wait}.",
        "it": "Ti sto mettendo in contatto con una persona del nostro team. L'attesa è di {wait}.",
    },
    "handoff_reopens": {
        "en": "I'm connecting you with a member of our team. We close before your turn comes, "
        "so we'll be with you when we reopen, {reopens}.",
        "es": "Te estoy poniendo en contacto con una persona de nuestro equipo. Cerramos antes "
        "de que llegue tu turno: te atenderemos cuando volvamos a abrir, el {reopens}.",
        "pt": "Estou a ligar você a uma pessoa da nossa equipa. Fechamos antes da sua vez: "
        "atendemos assim que reabrirmos, {reopens}.",
        "fr": "Je vous mets en relation avec un membre de notre équipe. Nous fermons avant votre "
        "tour : nous vous répondrons à notre réouverture, {reopens}.",
        "de": "Ich verbinde Sie mit jemandem aus unserem Team. Wir schließen, bevor Sie an der "
        "Reihe sind: Ab {reopens} sind wir wieder für Sie da.",
        "it": "Ti sto mettendo in contatto con una persona del nostro team. Chiudiamo prima del "
        "tuo turno: ti risponderemo alla riapertura, {reopens}.",
    },
    "queue_place": {
        "en": "You are number {position} in the queue — {wait}.",
        "es": "Eres el número {position} en la cola — {wait}.",
        "pt": "Você é o número {position} na fila — {wait}.",
        "fr": "Vous êtes numéro {position} dans la file — {wait}.",
        "de": "Sie sind Nummer {position} in der Warteschlange — {wait}.",
        "it": "Sei il numero {position} in coda — {wait}.",
    },
    "queue_place_reopens": {
        "en": "You are number {position} in the queue — we'll be with you when we reopen, "
        "{reopens}.",
        "es": "Eres el número {position} en la cola — te atenderemos cuando volvamos a abrir, "
        "el {reopens}.",
        "pt": "Você é o número {position} na fila — atendemos assim que reabrirmos, {reopens}.",
        "fr": "Vous êtes numéro {position} dans la file — nous vous répondrons à notre "
        "réouverture, {reopens}.",
        "de": "Sie sind Nummer {position} in der Warteschlange — wir sind ab {reopens} wieder "
        "für Sie da.",
        "it": "Sei il numero {position} in coda — ti risponderemo alla riapertura, {reopens}.",
    },
    "after_hours": {
        "en": "Our {team} team is away right now and back {reopens}. Your request stays open: "
        "type your email address here and we'll follow up, or stay and we'll pick up as soon "
        "as we're back.",
        "es": "Nuestro equipo de {team} no está disponible ahora y vuelve el {reopens}. Tu "
        "solicitud sigue abierta: escribe aquí tu correo electrónico y te responderemos, o "
        "quédate y te atenderemos en cuanto volvamos.",
        "pt": "A nossa equipa de {team} está ausente agora e volta {reopens}. O seu pedido "
        "continua aberto: escreva aqui o seu e-mail e respondemos, ou fique e atendemos assim "
        "que voltarmos.",
        "fr": "Notre équipe {team} est absente pour le moment et revient {reopens}. Votre "
        "demande reste ouverte : écrivez votre adresse e-mail ici et nous vous répondrons, ou "
        "restez et nous vous répondrons dès notre retour.",
        "de": "Unser {team}-Team ist gerade nicht da und ab {reopens} wieder erreichbar. Ihre "
        "Anfrage bleibt offen: Schreiben Sie hier Ihre E-Mail-Adresse und wir melden uns, oder "
        "bleiben Sie, und wir sind gleich nach unserer Rückkehr für Sie da.",
        "it": "Il nostro team {team} al momento non è disponibile e torna {reopens}. La tua "
        "richiesta resta aperta: scrivi qui il tuo indirizzo email e ti risponderemo, oppure "
        "resta e ti risponderemo appena torniamo.",
    },
    "follow_up_email": {
        "en": "Thank you. We'll follow up at {email} as soon as the team is back.",
        "es": "Gracias. Te escribiremos a {email} en cuanto el equipo vuelva.",
        "pt": "Obrigado. Vamos escrever para {email} assim que a equipa voltar.",
        "fr": "Merci. Nous vous écrirons à {email} dès le retour de l'équipe.",
        "de": "Danke. Wir melden uns unter {email}, sobald das Team zurück ist.",
        "it": "Grazie. Ti scriveremo a {email} appena il team torna.",
    },
    "back_in_queue": {
        "en": "You're back in the queue; the next available agent will be with you shortly.",
        "es": "Vuelves a estar en la cola; la próxima persona disponible te atenderá en breve.",
        "pt": "Voltou à fila; a próxima pessoa disponível vai atendê-lo em breve.",
        "fr": "Vous êtes de nouveau dans la file ; le prochain agent disponible vous répondra "
        "sous peu.",
        "de": "Sie sind wieder in der Warteschlange; die nächste freie Person ist gleich für "
        "Sie da.",
        "it": "Sei di nuovo in coda; la prima persona disponibile ti risponderà a breve.",
    },
    "takeover": {
        "en": "Now speaking with {agent_name}",
        "es": "Ahora hablas con {agent_name}",
        "pt": "Agora está a falar com {agent_name}",
        "fr": "Vous parlez maintenant avec {agent_name}",
        "de": "Sie sprechen jetzt mit {agent_name}",
        "it": "Ora stai parlando con {agent_name}",
    },
    "agent_greeting": {
        "en": "Hi, I'm {agent_name}. I've reviewed your conversation and I'm here to help.",
        "es": "Hola, soy {agent_name}. He revisado tu conversación y estoy aquí para ayudarte.",
        "pt": "Olá, sou {agent_name}. Revi a sua conversa e estou aqui para ajudar.",
        "fr": "Bonjour, je suis {agent_name}. J'ai lu votre conversation et je suis là pour "
        "vous aider.",
        "de": "Hallo, ich bin {agent_name}. Ich habe Ihr Gespräch gelesen und helfe Ihnen gern.",
        "it": "Ciao, sono {agent_name}. Ho letto la tua conversazione e sono qui per aiutarti.",
    },
    "hand_back": {
        "en": "You're chatting with our assistant again.",
        "es": "Vuelves a hablar con nuestro asistente.",
        "pt": "Voltou a falar com o nosso assistente.",
        "fr": "Vous discutez de nouveau avec notre assistant.",
        "de": "Sie schreiben wieder mit unserem Assistenten.",
        "it": "Stai di nuovo parlando con il nostro assistente.",
    },
    "closing": {
        "en": "Thank you for contacting us. This conversation is now closed; if you need "
        "anything else, just write again.",
        "es": "Gracias por contactarnos. Esta conversación ha terminado; si necesitas algo "
        "más, escríbenos de nuevo.",
        "pt": "Obrigado pelo contacto. Esta conversa terminou; se precisar de mais alguma "
        "coisa, escreva-nos de novo.",
        "fr": "Merci de nous avoir contactés. Cette conversation est terminée ; si vous avez "
        "besoin d'autre chose, écrivez-nous à nouveau.",
        "de": "Danke für Ihre Nachricht. Dieses Gespräch ist jetzt beendet; wenn Sie noch "
        "etwas brauchen, schreiben Sie uns einfach wieder.",
        "it": "Grazie per averci contattato. Questa conversazione è conclusa; se ti serve "
        "altro, scrivici di nuovo.",
    },
    "resolved_status": {
        "en": "Resolved — write here if you need anything else",
        "es": "Resuelto — escribe aquí si necesitas algo más",
        "pt": "Resolvido — escreva aqui se precisar de mais alguma coisa",
        "fr": "Résolu — écrivez ici si vous avez besoin d'autre chose",
        "de": "Gelöst — schreiben Sie hier, wenn Sie noch etwas brauchen",
        "it": "Risolto — scrivi qui se ti serve altro",
    },
    "rating_prompt": {
        "en": "How did we do? Rate this conversation from 1 (poor) to 5 (excellent).",
        "es": "¿Qué tal lo hicimos? Valora esta conversación de 1 (mal) a 5 (excelente).",
        "pt": "Como correu? Avalie esta conversa de 1 (mau) a 5 (excelente).",
        "fr": "Comment s'est passé cet échange ? Notez-le de 1 (mauvais) à 5 (excellent).",
        "de": "Wie waren wir? Bewerten Sie dieses Gespräch von 1 (schlecht) bis 5 (ausgezeichnet).",
        "it": "Come è andata? Valuta questa conversazione da 1 (pessima) a 5 (ottima).",
    },
    "rating_reply_prompt": {
        "en": "How did we do? Reply with a number from 1 (poor) to 5 (excellent).",
        "es": "¿Qué tal lo hicimos? Responde con un número del 1 (mal) al 5 (excelente).",
        "pt": "Como correu? Responda com um número de 1 (mau) a 5 (excelente).",
        "fr": "Comment s'est passé cet échange ? Répondez par un chiffre de 1 (mauvais) à 5 "
        "(excellent).",
        "de": "Wie waren wir? Antworten Sie mit einer Zahl von 1 (schlecht) bis 5 (ausgezeichnet).",
        "it": "Come è andata? Rispondi con un numero da 1 (pessima) a 5 (ottima).",
    },
    "rating_thanks": {
        "en": "Thank you for your feedback!",
        "es": "¡Gracias por tu opinión!",
        "pt": "Obrigado pela sua opinião!",
        "fr": "Merci pour votre avis !",
        "de": "Danke für Ihre Rückmeldung!",
        "it": "Grazie per il tuo parere!",
    },
}

# ``{wait}``: (one, other) per language; ``_plural_is_one`` chooses (CLDR's cardinal rules).
WAIT_PHRASES = {
    "en": ("about {n} minute", "about {n} minutes"),
    "es": ("aproximadamente {n} minuto", "aproximadamente {n} minutos"),
    "pt": ("cerca de {n} minuto", "cerca de {n} minutos"),
    "fr": ("environ {n} minute", "environ {n} minutes"),
    "de": ("etwa {n} Minute", "etwa {n} Minuten"),
    "it": ("circa {n} minuto", "circa {n} minuti"),
}


def _plural_is_one(language: str, n: int) -> bool:
    # French and Portuguese (CLDR: pt "i = 0..1") say 0 and 1 in the singular; the others 1.
    if language in ("fr", "pt"):
        return n in (0, 1)
    return n == 1


def wait_phrase(minutes: int, language: str) -> str:
    """ "about 1 minute" / "about 4 minutes" in ``language`` (English outside the six)."""
    language = supported(language)
    one, other = WAIT_PHRASES[language]
    return (one if _plural_is_one(language, minutes) else other).format(n=minutes)


def supported(language: str | None) -> str:
    """The language code texts exist in: "de" for "de", "de-AT" or "DE"; else English."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else FALLBACK


def default_text(kind: str, language: str) -> str:
    return DEFAULTS[kind][supported(language)]


def fill(template: str, **values) -> str:
    """Fill ``{name}`` placeholders without tripping on other braces in the text."""
    result = template
    for name, value in values.items():
        result = result.replace("{" + name + "}", str(value))
    return result


def overrides(language: str) -> dict[str, str]:
    """The manager's texts for one language, by kind (one query)."""
    from .models import CustomerText

    return dict(
        CustomerText.objects.filter(language=supported(language)).values_list("kind", "text")
    )


def text_for(kind: str, language: str | None) -> str:
    """The unfilled text of ``kind`` for a customer speaking ``language`` (one query)."""
    from .models import CustomerText

    if kind not in KIND_BY_CODE:
        raise KeyError(kind)
    code = supported(language)
    override = (
        CustomerText.objects.filter(kind=kind, language=code).values_list("text", flat=True).first()
    )
    return override or DEFAULTS[kind][code]


def render(kind: str, language: str | None, *, template: str | None = None, **values) -> str:
    """The text of ``kind`` in the customer's language, placeholders filled. ``wait_minutes``
    also fills ``{wait}`` with the language's plural phrase. ``template``: ``text_for(kind,
    language)`` when the caller read it already (rendering many, no query each)."""
    code = supported(language)
    if "wait_minutes" in values:
        values.setdefault("wait", wait_phrase(int(values["wait_minutes"]), code))
    return fill(template if template is not None else text_for(kind, code), **values)


def describe_instant(local: datetime) -> str:
    """ "Monday 5 January 09:00 (Europe/Berlin)" in the active language, for an instant already
    in the team's zone (a ``ZoneInfo``)."""
    from django.utils import formats

    return _("%(day)s %(time)s (%(zone)s)") % {
        "day": formats.date_format(local, "l j F"),
        "time": local.strftime("%H:%M"),
        "zone": local.tzinfo.key,
    }


def queue_place_text(
    *,
    position: int,
    wait_minutes: int,
    reopens_at: datetime | None,
    language: str | None,
    wordings: dict | None = None,
) -> str:
    """The waiting customer's line, everywhere it is shown (the widget's status line, the API's
    ``queue.text``, WhatsApp and Instagram updates): "You are number 3 in the queue — about 4
    minutes."; while the wait runs over the team's closed hours (``reopens_at``, in the team's
    zone), the reopening instead of a count of minutes stretched over the night. ``wordings``:
    a dict the caller keeps while rendering many (each kind and language read once)."""
    from django.utils import translation

    code = supported(language)
    kind = "queue_place" if reopens_at is None else "queue_place_reopens"
    template = None
    if wordings is not None:
        if (kind, code) not in wordings:
            wordings[kind, code] = text_for(kind, code)
        template = wordings[kind, code]
    if reopens_at is None:
        return render(kind, code, template=template, position=position, wait_minutes=wait_minutes)
    with translation.override(code):
        reopens = describe_instant(reopens_at)
    return render(kind, code, template=template, position=position, reopens=reopens)


def validate(kind: str, text: str) -> str:
    """The text cleaned, or ``InvalidMessage`` saying what is wrong: empty, too long, a brace
    without its pair, or a placeholder this kind does not fill (the allowed ones named)."""
    spec = KIND_BY_CODE.get(kind)
    if spec is None:
        raise InvalidMessage(_("Unknown message kind %(kind)r.") % {"kind": kind})
    text = (text or "").strip()
    if not text:
        raise InvalidMessage(_("%(field)s cannot be empty.") % {"field": spec.label})
    if len(text) > MAX_CHARS:
        raise InvalidMessage(
            _("%(field)s is longer than %(max)d characters.")
            % {"field": spec.label, "max": MAX_CHARS}
        )
    try:
        fields = [
            (name, spec_, conv)
            for _lit, name, spec_, conv in string.Formatter().parse(text)
            if name is not None
        ]
    except ValueError:
        raise InvalidMessage(
            _("%(field)s has a brace without its pair.") % {"field": spec.label}
        ) from None
    # Only a bare {name} is filled: "{}", "{0}" or "{agent_name!r}" would reach the customer.
    names = {name if not (spec_ or conv) else f"{name}…" for name, spec_, conv in fields}
    unknown = names - set(spec.placeholders)
    if unknown:
        allowed = ", ".join("{" + name + "}" for name in spec.placeholders) or _("none")
        raise InvalidMessage(
            _("%(field)s uses unknown placeholders: %(names)s. Allowed: %(allowed)s.")
            % {
                "field": spec.label,
                "names": ", ".join("{" + name + "}" for name in sorted(unknown)),
                "allowed": allowed,
            }
        )
    return text


def sample_values(language: str) -> dict:
    """What Settings' preview fills in (the reopening day named in ``language``, as the
    after-hours message names it)."""
    from zoneinfo import ZoneInfo

    from django.utils import translation

    with translation.override(supported(language)):
        reopens = describe_instant(datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    return {
        "agent_name": "Marina",
        "wait_minutes": 4,
        "wait": wait_phrase(4, language),
        "position": 3,
        "team": "Support",
        "reopens": reopens,
        "score": 5,
        "email": "jamie@example.org",
    }
