"""Without EMAIL_HOST an email is one line on the console: recipients and subject, no body."""

import io

from django.core.mail import EmailMultiAlternatives

from config.email import ConsoleSummaryBackend


def test_an_email_is_one_line_naming_its_recipients_and_subject():
    stream = io.StringIO()
    message = EmailMultiAlternatives(
        "Jamie Patel needs an agent", "a long body", to=["marina@example.com", "alex@example.com"]
    )
    message.attach_alternative("<p>a long html body</p>", "text/html")

    sent = ConsoleSummaryBackend(stream=stream).send_messages([message])

    assert sent == 1
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "marina@example.com, alex@example.com" in lines[0]
    assert "Jamie Patel needs an agent" in lines[0]
    assert "body" not in lines[0]
