import factory
from django.contrib.auth import get_user_model

from crm.models import AgentProfile, Assistant, Channel, Contact, Conversation, Team


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"Team {n}")


def deleted_team_id() -> int:
    """The id of a team that existed and was deleted (a form still naming it was open)."""
    gone = TeamFactory(name="Returns")
    gone_id = gone.pk
    gone.delete()
    return gone_id


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password("pw")


class AgentProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentProfile

    user = factory.SubFactory(UserFactory)
    display_name = factory.Sequence(lambda n: f"Agent {n}")
    availability = AgentProfile.Availability.ONLINE
    notify_via = AgentProfile.NotifyVia.IN_APP


def AgentFactory(*, display_name=None, username=None, teams=(), **profile_fields):
    """A staff user with an agent profile; returns the user."""
    user = UserFactory(**({"username": username} if username else {}))
    profile = AgentProfileFactory(
        user=user, **({"display_name": display_name} if display_name else {}), **profile_fields
    )
    if teams:
        profile.teams.add(*teams)
    return user


class AssistantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assistant

    name = factory.Sequence(lambda n: f"Assistant {n}")


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    kind = "website"
    name = factory.Sequence(lambda n: f"Channel {n}")
    key = factory.Sequence(lambda n: f"channel-{n}")
    assistant = factory.SubFactory(AssistantFactory)


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.LazyAttribute(lambda c: f"{c.name.lower().replace(' ', '.')}@example.com")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    contact = factory.SubFactory(ContactFactory)
    channel = factory.SubFactory(ChannelFactory)
    assistant = factory.LazyAttribute(lambda c: c.channel.assistant)
    team = factory.LazyAttribute(lambda c: c.channel.default_team)
