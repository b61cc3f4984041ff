"""Short, strict pattern lists that sit in front of the classifier.

Only unmistakable phrasings belong here: a verb of speaking/transferring *and* a word for a human
in the same clause. Everything fuzzier (typos, long sentences, "get me someone who can actually
help") is the classifier's job. Patterns run on ``features.normalize``d text (lowercase, no
accents), so "Quiero hablar con una PERSONA" and "quiero hablar con una persona" are the same.
"""

import re

_HUMAN = (
    r"(?:a |an |one |some |to |with )?(?:real |actual |live |human |proper )?"
    r"(?:human(?: being)?|person|people|agent|representative|rep|operator|somebody|someone|"
    r"staff member|support agent|manager|supervisor)"
)
_REQUEST_PATTERNS = [
    # English
    rf"\b(?:speak|talk|chat)(?:ing)? (?:to|with) {_HUMAN}\b",
    rf"\b(?:transfer|connect|put|pass|escalate|forward) me (?:to|through to|with) {_HUMAN}\b",
    r"\b(?:i want|i need|give me|get me|let me have) (?:a |an )?(?:real |live |actual )?"
    r"(?:human|person|agent|operator)\b",
    r"\b(?:real|live|actual) (?:human|person|agent) (?:please|now|pls|plz)\b",
    r"^(?:human|agent|operator|representative|real person)(?: please| pls| now)?[ .!?]*$",
    # Spanish
    r"\b(?:hablar|comunicarme|charlar|platicar) con (?:un |una |alguna |algun )?(?:persona|humano|"
    r"agente|asesor|asesora|operador|operadora|ser humano|encargado|supervisor)\b",
    r"\b(?:pasame|paseme|comuniqueme|comunicame|transfiereme|transfierame) (?:con|a) "
    r"(?:un |una )?(?:persona|humano|agente|asesor|operador)\b",
    r"\bquiero (?:un |una )?(?:persona|humano|agente|asesor) (?:real|de verdad)\b",
    r"\b(?:me )?atienda (?:una persona|alguien|un agente|un humano|un asesor)\b",
    # Portuguese
    r"\b(?:falar|conversar) com (?:um |uma |algum |alguem|o |a )?(?:atendente|pessoa|humano|"
    r"agente|operador|ser humano|gerente|alguem)\b",
    r"\b(?:me transfira|me passe|me passa|transfere me|transfira me) (?:para|pra) "
    r"(?:um |uma )?(?:atendente|pessoa|humano|agente)\b",
    r"\bquero (?:um |uma )?(?:atendente|humano|pessoa) (?:real|de verdade|humano)\b",
    # French
    r"\b(?:parler|discuter) (?:a|avec) (?:un |une |quelqu'un|quelqu un)?(?:vrai |vraie )?"
    r"(?:humain|personne|conseiller|conseillere|agent|operateur|operatrice|etre humain|"
    r"quelqu'un|quelqu un)\b",
    r"\b(?:passez moi|passe moi|transferez moi|mettez moi en relation avec) "
    r"(?:un |une )?(?:humain|personne|conseiller|conseillere|agent)\b",
    # German
    r"\b(?:mit|zu|an) (?:einem |einer |einen |dem |der |den )?(?:echten |richtigen |menschlichen )?"
    r"(?:menschen|mensch|mitarbeiter|mitarbeiterin|berater|beraterin|person|kundenberater|"
    r"sachbearbeiter|kundenservice|kundendienst|support|vorgesetzten)\b"
    r".{0,20}\b(?:sprechen|reden|verbinden|chatten|weiterleiten|telefonieren)\b",
    r"\b(?:verbinden sie mich|verbinde mich|leiten sie mich) (?:mit|an|zu) ",
    r"\bich (?:will|mochte|moechte|brauche) (?:einen |eine )?(?:echten |richtigen )?"
    r"(?:menschen|mitarbeiter|berater|person)\b",
    # Italian
    r"\b(?:parlare|chattare|comunicare) con (?:un |una |un' )?(?:operatore|operatrice|persona|"
    r"umano|essere umano|agente|consulente|addetto|addetta)\b",
    r"\b(?:passami|mi passi|mi metta in contatto con|mettimi in contatto con) "
    r"(?:un |una )?(?:operatore|operatrice|persona|umano|agente)\b",
]
REQUEST = re.compile("|".join(f"(?:{p})" for p in _REQUEST_PATTERNS))

# Declining a person ("no need for a person, thanks") or talking *about* one.
_DECLINE_PATTERNS = [
    r"\bno (?:need|necesito|necesidad|hace falta|preciso|besoin|bisogno)\b",
    r"\b(?:don't|dont|do not|no) (?:want|need) (?:to (?:talk|speak) (?:to|with) )?(?:a |an )?"
    r"(?:human|person|agent)",
    r"\b(?:without|sin|sem|sans|ohne|senza) (?:a |un |una |um |uma |einen |einem )?"
    r"(?:human|person|agent|persona|humano|atendente|humain|menschen|operatore)\b",
    r"\b(?:don't|dont|do not|no) (?:want|need) to (?:talk|speak|chat) (?:to|with) "
    r"(?:anyone|anybody|a person|a human|someone|an agent)\b",
    r"\b(?:i'm|im|i am) (?:fine|ok|okay|happy) with (?:the|a|this) (?:bot|ai|assistant|chat)\b",
    r"\bkein(?:en)? (?:mitarbeiter|menschen)\b",
    r"\bpas besoin\b",
    r"\bnon (?:serve|c'e bisogno|ho bisogno)\b",
    r"\bnao precisa\b",
    r"\bno hace falta\b",
]
DECLINE = re.compile("|".join(f"(?:{p})" for p in _DECLINE_PATTERNS))

_ALREADY_TOLD = [
    r"\bi (?:already|just) (?:told|said|explained|gave|asked|wrote|sent)\b",
    r"\b(?:told|said|asked) (?:you )?(?:this )?(?:already|before|twice|three times)\b",
    r"\bas i (?:said|told you|mentioned|explained)\b",
    r"\bhow many times\b",
    r"\b(?:for the|this is the) (?:second|third|fourth|fifth|0th) time\b",
    r"\bagain and again\b",
    r"\byou(?:'re| are)? (?:keep |just )?(?:repeating|saying the same)\b",
    r"\byou keep (?:saying|telling|sending|asking|giving)\b",
    r"\bsame (?:answer|thing|reply|response|message)\b",
    r"\bnot what i asked\b",
    r"\byou (?:already|just) (?:said|told me)\b",
    r"\byou said (?:that|this|the same) (?:already|before)\b",
    # es / pt
    r"\bya (?:te |le |lo )?(?:lo )?(?:dije|he dicho|explique|escribi|pregunte)\b",
    r"\bcuantas veces\b",
    r"\b(?:me )?(?:repites|repite|sigues diciendo) (?:lo mismo)?",
    r"\bla misma (?:respuesta|cosa)\b",
    r"\b(?:eso )?ya (?:me )?lo (?:has dicho|dijiste|dijo)\b",
    r"\b(?:voce|vc) ja (?:disse|falou) isso\b",
    r"\bja (?:te |lhe |o )?(?:disse|falei|expliquei|escrevi|perguntei)\b",
    r"\bquantas vezes\b",
    r"\b(?:a mesma|mesma) (?:resposta|coisa)\b",
    # fr
    r"\bje (?:vous |te )?(?:l'|le |l )?ai deja (?:dit|explique|ecrit|demande)\b",
    r"\bdeja dit\b",
    r"\bvous (?:l'|l )?avez deja dit\b",
    r"\bcombien de fois\b",
    r"\bla meme (?:reponse|chose)\b",
    # de
    r"\b(?:hab|habe) (?:ich )?(?:ihnen |dir )?(?:doch )?(?:schon|bereits) (?:gesagt|geschrieben|"
    r"erklart|erklaert|gefragt)\b",
    r"\bwie oft (?:noch)?\b",
    r"\b(?:das )?(?:haben sie|hast du) (?:doch )?(?:schon|bereits) (?:gesagt|geschrieben)\b",
    r"\b(?:die )?(?:gleiche|selbe|dieselbe) (?:antwort|sache)\b",
    # it
    r"\b(?:te |le |l'|l )?ho gia (?:detto|spiegato|scritto|chiesto)\b",
    r"\bquante volte\b",
    r"\b(?:me )?l'?hai gia detto\b",
    r"\bla stessa (?:risposta|cosa)\b",
]
ALREADY_TOLD = re.compile("|".join(f"(?:{p})" for p in _ALREADY_TOLD))

# Words that intensify anger in any of the six languages; kept short on purpose.
PROFANITY = re.compile(
    r"(?:\bf\*+k?\b|\bf\*{2,}|\bs\*+t\b)|\b(?:fuck\w*|shit\w*|crap|damn\w*|goddamn\w*|bullshit|wtf|ffs|bloody|piss\w*|"
    r"mierda|joder|carajo|puta|puto|cabron\w*|porra|merda|caralho|droga|"
    r"putain|merde|bordel|scheisse|scheiss\w*|verdammt\w*|mist|cazzo|vaffanculo|"
    r"schifo|stronz\w*)\b"
)

CONFUSION = re.compile(
    r"\b(?:i don't understand|i dont understand|i do not understand|confus\w*|makes no sense|"
    r"what do you mean|i'm lost|im lost|no entiendo|no comprendo|nao entendi|nao entendo|"
    r"je ne comprends pas|je comprends pas|j'ai pas compris|ich verstehe (?:das )?nicht|"
    r"versteh(?:e)? ich nicht|non capisco|non ho capito)\b"
)

# A closing message: the customer is done, so a weak AI answer or an old loop needs no person.
_CLOSING = re.compile(
    r"\b(?:thanks?|thank you|thx|cheers|that worked|it worked|works now|found it|got it|sorted|"
    r"never ?mind|no worries|all good|gracias|perfecto|listo|obrigad[oa]|valeu|consegui|merci|"
    r"parfait|c'est bon|danke|erledigt|gefunden|grazie|perfetto|risolto)\b"
)
_NOT_DONE = re.compile(r"\?|\b(?:but|pero|mas|mais|aber|ma|però|still|todavia|ainda|encore|noch)\b")


def is_closing(norm: str, raw: str) -> bool:
    return bool(_CLOSING.search(norm)) and not _NOT_DONE.search(raw.lower())


# Unmistakable cues for the complexity topics (the classifier covers the rest).
TOPIC_PATTERNS = {
    "account_security": re.compile(
        r"\b(?:hack(?:ed|eado|eada|eou|ear)|hackerat\w*|gehackt|pirate|piratee|piratage|"
        r"invadid[ao]|account (?:was |has been |got )?(?:taken over|compromised|stolen)|"
        r"account takeover|unauthori[sz]ed (?:login|access|sign in)|someone (?:logged|got) into)\b"
    ),
    "legal": re.compile(
        r"\b(?:lawyer|attorney|solicitor|lawsuit|sue you|suing|small claims|legal action|"
        r"abogad[oa]|demanda(?:re|r)?|advogad[oa]|processar|avocat|poursuites?|anwalt|anwaltin|"
        r"klage|verklagen|avvocato|far(?:o|e) causa|denuncia\w*)\b"
    ),
    "privacy": re.compile(
        r"\b(?:gdpr|rgpd|dsgvo|lgpd|right to be forgotten|subject access request|"
        r"derecho al olvido|direito ao esquecimento|droit a l'oubli|diritto all'oblio)\b"
    ),
    # Asking for one's money back (not asking *about* refunds: "what is your refund policy").
    "refund": re.compile(
        r"\b(?:i (?:want|need|would like|'d like|demand) (?:a |my |an? full )?refund|"
        r"refund me\b|please refund|i want my money back|(?:give|send) me my money back|"
        r"quiero (?:un |el |mi )?reembolso|quiero que me devuelvan (?:el|mi) dinero|"
        r"devuelvanme (?:el|mi) dinero|quero (?:o |um |meu )?reembolso|"
        r"quero (?:o )?meu dinheiro de volta|devolvam (?:o )?meu dinheiro|"
        r"je (?:veux|voudrais|souhaite|demande) (?:un |etre |a etre )?rembours|"
        r"rendez moi mon argent|remboursez moi|"
        r"ich (?:will|mochte|hatte gern|verlange) (?:eine |mein )?(?:ruckerstattung|erstattung|"
        r"geld zuruck)|erstatten sie mir|"
        r"voglio (?:un |il )?rimborso|rivoglio i miei soldi|rimborsatemi)"
    ),
    "billing_dispute": re.compile(
        r"\b(?:chargeback|charged (?:me )?twice|double charged|charged double|"
        r"(?:two|2|three|3|duplicate|identical) (?:charges|payments|debits)|"
        r"cobraron dos veces|cobrado duas vezes|debite deux fois|doppelt abgebucht|"
        r"addebitato due volte)\b"
    ),
}

# Strongly negative words, VADER-style but for all six languages (VADER's lexicon is English
# only). Matched on normalised text (no accents); each hit adds to the intensity.
NEGATIVE_WORDS = re.compile(
    r"\b(?:furious|fuming|livid|outraged|outrageous|disgusted|disgusting|disgrace\w*|"
    r"unacceptable|ridiculous|pathetic|useless|incompetent|appalling|horrible|terrible|"
    r"worst|scam|rip ?off|nightmare|fed up|sick of|"
    r"furios[oa]s?|indignad[oa]s?|indignadisim[oa]|enfadad[oa]s?|cabread[oa]|harto|harta|"
    r"hasta las narices|inaceptable|verguenza|desastre|pesimo|pesima|estafa|ridicul[oa]|"
    r"incompetentes?|timo|"
    r"raiva|revoltad[oa]|irritad[oa]|absurdo|vergonha|pessim[oa]|palhacada|descaso|"
    r"saco cheio|farto|farta|"
    r"furieux|furieuse|en colere|inadmissible|inacceptable|honte|honteux|scandaleux|nul|nuls|"
    r"ras le bol|marre|arnaque|catastrophe|lamentable|"
    r"wutend|sauer|stinksauer|unverschamt\w*|frechheit|unfassbar|katastrophe|lacherlich|"
    r"miserabel|betrug|betruger|nase voll|"
    r"arrabbiat[oa]|furibond[oa]|inaccettabile|vergogna|vergognoso|pessimo|pessima|disastro|"
    r"truffa|ridicolo|stufo|stufa|schifo|penoso)\b"
)
