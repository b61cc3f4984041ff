"""The demo world seeded by `manage.py seed_demo`: small, but every screen has something."""

from datetime import timedelta

KNOWLEDGE_BASE = [
    (
        "Reset your password",
        "password reset login forgot",
        "Go to Sign in → Forgot password, enter your email and follow the link we send. The link "
        "works for 30 minutes.",
    ),
    (
        "Change your email address",
        "email change account",
        "Open Account → Profile, edit Email and confirm from the message sent to the new address.",
    ),
    (
        "Update your payment method",
        "card payment method update billing",
        "Open Billing → Payment methods, add the new card and make it the default.",
    ),
    (
        "When you are charged",
        "charge billing date subscription renew",
        "Subscriptions renew on the same day each month; the charge appears within two days.",
    ),
    (
        "Download invoices",
        "invoice download receipt pdf",
        "Billing → Invoices lists every invoice; click one to download it as PDF.",
    ),
    (
        "Cancel your subscription",
        "cancel subscription stop plan",
        "Billing → Plan → Cancel. You keep access until the end of the paid period.",
    ),
    (
        "Change your plan",
        "upgrade downgrade plan change",
        "Billing → Plan → Change plan. Upgrades apply at once; downgrades at the next renewal.",
    ),
    (
        "Shipping times",
        "shipping delivery time days",
        "Orders ship within 1 business day; delivery takes 2–5 business days in the US.",
    ),
    (
        "Track your order",
        "track order tracking number status where",
        "Orders → your order → Track shows the carrier's tracking number and status.",
    ),
    (
        "Return an item",
        "return item send back",
        "Orders → your order → Return starts a return; print the label and drop it off within 30 "
        "days.",
    ),
    (
        "Exchange an item",
        "exchange size swap",
        "Start a return and choose Exchange; we ship the new item when the old one is scanned.",
    ),
    (
        "Two-factor authentication",
        "2fa two factor authentication security code",
        "Account → Security → Two-factor turns on codes by app or SMS.",
    ),
    (
        "Export your data",
        "export data download account",
        "Account → Privacy → Export prepares a ZIP of your data within 24 hours.",
    ),
    (
        "Notification settings",
        "notifications email alerts settings",
        "Account → Notifications chooses which emails and push alerts you receive.",
    ),
    (
        "Business hours",
        "hours open support time",
        "Our team is available Monday to Friday, 8am–8pm ET; "
        "the assistant answers around the clock.",
    ),
    (
        "Gift cards",
        "gift card balance redeem",
        "Redeem a gift card at checkout; Account → Gift cards shows the balance.",
    ),
    (
        "Discount codes",
        "discount promo code coupon",
        "Enter the code at checkout. One code per order; codes can't be applied after purchase.",
    ),
    (
        "Team accounts",
        "team seats users invite",
        "Account → Team → Invite adds a colleague; each seat is billed monthly.",
    ),
    (
        "Mobile app",
        "app ios android mobile",
        "The app is on the App Store and Google Play; sign in with the same account.",
    ),
    (
        "Delete your account",
        "delete account close remove",
        "Account deletion is handled by our team so nothing is lost by mistake: ask in the chat.",
    ),
]

# (contact name, email, channel kind, mode, messages [(sender, text, confidence)], escalation)
CONVERSATIONS = [
    (
        "Priya Shah",
        "priya.shah@example.com",
        "website",
        "ai",
        [
            ("customer", "How do I download my invoices?", None),
            (
                "ai",
                "Billing → Invoices lists every invoice; click one to download it as PDF.",
                0.91,
            ),
        ],
        None,
    ),
    (
        "Tomás García",
        "tomas.garcia@example.com",
        "whatsapp",
        "ai",
        [
            ("customer", "¿Cuánto tarda el envío?", None),
            (
                "ai",
                "Orders ship within 1 business day; delivery takes 2–5 business days in the US.",
                0.62,
            ),
        ],
        None,
    ),
    (
        "Lena Fischer",
        "lena.fischer@example.com",
        "instagram",
        "awaiting_agent",
        [
            ("customer", "I've asked three times now, where is my order #A-5521??", None),
            (
                "ai",
                "Orders → your order → Track shows the carrier's tracking number and status.",
                0.55,
            ),
            (
                "customer",
                "I ALREADY TOLD YOU the tracking page is empty. This is ridiculous.",
                None,
            ),
        ],
        ("sentiment", "high", "Frustrated: repeated order question", 25),
    ),
    (
        "Omar Haddad",
        "omar.haddad@example.com",
        "website",
        "awaiting_agent",
        [
            (
                "customer",
                "Someone logged into my account from another country and changed my email.",
                None,
            ),
        ],
        ("complexity", "urgent", "Account takeover", 4),
    ),
    (
        "Chloé Martin",
        "chloe.martin@example.com",
        "website",
        "agent",
        [
            ("customer", "Je voudrais parler à un conseiller, s'il vous plaît.", None),
        ],
        ("request", "high", "Asked for a person", 40),
    ),
    (
        "Ben Carter",
        "ben.carter@example.com",
        "whatsapp",
        "closed",
        [
            ("customer", "I want to cancel and get a refund for this month.", None),
        ],
        ("complexity", "normal", "Refund request", 180),
    ),
]

# Anonymous website visitors: no name or email, only what their browser reported (agents see
# them as "Blue Fox 42 (visitor)" with the page, referrer, language and time zone).
# (visit context, mode, messages, escalation)
VISITORS = [
    (
        {
            "page_url": "https://shop.example/checkout?step=payment",
            "referrer": "https://www.google.com/",
            "language": "pt-BR",
            "time_zone": "America/Sao_Paulo",
        },
        "awaiting_agent",
        [
            (
                "customer",
                "My card was declined at checkout but I see a pending charge of $89.90",
                None,
            ),
            (
                "ai",
                "A declined payment can show as pending for a few days; it is released "
                "automatically and never charged.",
                0.52,
            ),
            (
                "customer",
                "It's the second time today, order A-7731. Can a person check please?",
                None,
            ),
        ],
        ("request", "high", "Asked for a person", 9),
    ),
    (
        {
            "page_url": "https://shop.example/help/returns",
            "referrer": "https://shop.example/orders",
            "language": "en-GB",
            "time_zone": "Europe/London",
        },
        "ai",
        [
            ("customer", "How do I return a jacket I bought last week?", None),
            (
                "ai",
                "Orders → the order → Return item gives you a prepaid label; refunds follow "
                "within 5 days of the parcel arriving.",
                0.88,
            ),
        ],
        None,
    ),
]

JAMIE_MESSAGES = [
    ("customer", "My subscription was charged twice this month.", None),
    (
        "ai",
        "I can see two charges of $49 on your card: one on June 1 and one on June 3. The June 3 "
        "charge looks like a duplicate.",
        0.86,
    ),
    ("customer", "Yes, can you refund the duplicate? I need this resolved today.", None),
    ("ai", "This requires a human agent. Connecting you now…", 0.4),
]

AGO = timedelta(minutes=1)
