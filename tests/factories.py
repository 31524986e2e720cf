"""factory-boy factories for the core models. App factories live beside them as they land."""

import factory
from django.utils import timezone

from helpdesk.models import ApiToken, Membership, Role, Tenant, User


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Store {n}")
    slug = factory.Sequence(lambda n: f"store-{n}")
    timezone = "Europe/Berlin"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.AGENT
    availability = "online"
    created_at = factory.LazyFunction(timezone.now)


def make_token(tenant: Tenant, name: str = "Test token") -> tuple[ApiToken, str]:
    from helpdesk.services import Actor, api_token_create

    return api_token_create(tenant=tenant, name=name, actor=Actor.system())
