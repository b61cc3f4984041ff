"""Canned replies in Chromium, a manager and an agent in two browser contexts: the manager
writes a team reply from Settings (a wrong placeholder refused with its message), the agent
finds it by a word of its title on "/" and inserts it filled in, the manager sees the use
counted on the screen and in the admin, where a wrong placeholder is refused too."""

import pytest

from crm import services as crm_services
from crm.models import AgentProfile, CannedReply
from escalation.models import Escalation
from tests.factories import AgentFactory, ConversationFactory, TeamFactory

from .conftest import assert_page_clean, sign_in, wait_for_js, wait_live
from .test_inbox import watch_console

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]

BODY = "Hi {contact.first_name}, {agent.name} here: {ticket.reference} is with the courier."


def test_a_team_reply_written_in_settings_is_found_by_title_inserted_and_counted(
    open_page, escalate
):
    billing = TeamFactory(name="Billing")
    morgan = AgentFactory(
        display_name="Morgan", username="morgan", role=AgentProfile.Role.MANAGER, teams=[billing]
    )
    morgan.is_superuser = True  # the admin is the demo manager's too (seed_demo)
    morgan.save(update_fields=["is_superuser"])
    alex = AgentFactory(
        display_name="Alex", username="alex", role=AgentProfile.Role.AGENT, teams=[billing]
    )
    # Someone else's team: its members' replies are not Alex's to insert.
    support = TeamFactory(name="Support")
    crm_services.save_canned_reply(
        actor=morgan, team=support, shortcut="parcel-lost", title="Parcel lost", body="Sorry."
    )

    escalation = escalate(
        ConversationFactory(contact__name="Jamie Patel", team=billing), text="Where is it?"
    )

    manager = open_page("morgan")
    manager_errors = watch_console(manager)
    sign_in(manager, morgan, next_url="/crm/settings/")
    manager.click("#canned-settings a:has-text('Manage canned replies')")
    manager.wait_for_url("**/crm/canned-replies/")

    # A placeholder the server cannot fill: refused with its message, nothing saved.
    manager.select_option("#canned-team", label="Team Billing")
    manager.fill("#canned-shortcut", "courier")
    manager.fill("#canned-title", "Parcel with the courier")
    manager.fill("#canned-body", "Hi {contact.email}")
    manager.click("#canned-save")
    manager.wait_for_selector("#toasts .toast:has-text('unknown placeholders: contact.email')")
    assert not CannedReply.objects.filter(shortcut="courier").exists()

    manager.select_option("#canned-team", label="Team Billing")
    manager.fill("#canned-shortcut", "courier")
    manager.fill("#canned-title", "Parcel with the courier")
    manager.fill("#canned-body", BODY)
    manager.click("#canned-save")
    reply = CannedReply.objects.get(shortcut="courier")
    row = manager.locator(f"#canned-{reply.pk}")
    row.wait_for()
    assert "Billing" in row.inner_text() and row.locator(".use-count").inner_text() == "0"
    assert reply.team_id == billing.pk and reply.owner_id is None

    # Alex, in the inbox: "/" and a word of the title (not of the shortcut) finds it.
    agent = open_page("alex")
    agent_errors = watch_console(agent)
    sign_in(agent, alex, next_url=f"/crm/inbox/?c={escalation.conversation_id}")
    wait_live(agent)
    agent.keyboard.press("t")
    agent.wait_for_selector("#handled-by:has-text('You are handling this conversation.')")
    agent.keyboard.press("r")
    agent.keyboard.type("/parcel")
    option = agent.locator(".canned-option")
    option.first.wait_for()
    # Support's "Parcel lost" matches the word too, but is not Alex's team's.
    assert option.count() == 1
    assert "/courier" in option.first.inner_text() and "Billing" in option.first.inner_text()
    agent.keyboard.press("Enter")
    ticket = Escalation.objects.get(pk=escalation.pk).ticket
    expected = f"Hi Jamie, Alex here: {ticket.reference} is with the courier."
    wait_for_js(agent, "t => document.querySelector('#reply-text').value === t", expected)
    agent.click("#send-reply")
    agent.wait_for_selector(f"#messages .sender-agent:has-text('{expected}')")

    # The use is counted: on the screen and in the admin.
    manager.reload()
    assert manager.locator(f"#canned-{reply.pk} .use-count").inner_text() == "1"
    manager.goto("/admin/crm/cannedreply/")
    admin_row = manager.locator("#result_list tr", has_text="courier")
    assert admin_row.locator("td.field-use_count").inner_text() == "1"
    # The admin checks placeholders like the screen does.
    manager.goto("/admin/crm/cannedreply/add/")
    manager.select_option("#id_team", label="Billing")
    manager.fill("#id_shortcut", "thanks")
    manager.fill("#id_title", "Thanks")
    manager.fill("#id_body", "Thanks {agent.nickname}")
    manager.click("input[name=_save]")
    manager.wait_for_selector(".errornote")
    assert "unknown placeholders: agent.nickname" in manager.locator("#content").inner_text()
    assert not CannedReply.objects.filter(shortcut="thanks").exists()
    manager.fill("#id_body", "Thanks, {contact.first_name}!")
    manager.click("input[name=_save]")
    manager.wait_for_selector("#result_list")
    assert CannedReply.objects.get(shortcut="thanks").team_id == billing.pk

    for page in (manager, agent):
        assert_page_clean(page)
    assert manager_errors == [] and agent_errors == []
