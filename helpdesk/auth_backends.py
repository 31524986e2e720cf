"""Authentication backends."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from helpdesk import access_cache
from helpdesk.models import User


class CachedModelBackend(ModelBackend):
    """Django's ModelBackend, with the session's user read through the access cache: one
    query fewer on every signed-in page. Signing in (authenticate) still reads the row."""

    def get_user(self, user_id: Any) -> User | None:
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        user = access_cache.user_by_id(pk)
        return user if user is not None and self.user_can_authenticate(user) else None


@receiver(post_save, sender=User, dispatch_uid="access-cache-user-saved")
@receiver(post_delete, sender=User, dispatch_uid="access-cache-user-deleted")
def _user_changed(sender: type, instance: User, **kwargs: Any) -> None:
    access_cache.user_changed(instance.pk)
