"""The audit admin shows the log and checkpoints and offers no way to change them."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from tongban.audit.models import AuditCheckpoint, AuditEntry
from tongban.audit.services import checkpoint_create

from .helpers import make_log

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_request():
    request = RequestFactory().get("/admin/audit/auditentry/")
    request.user = get_user_model().objects.create(
        username="root", is_staff=True, is_superuser=True
    )
    return request


@pytest.mark.parametrize("model", [AuditEntry, AuditCheckpoint])
def test_not_even_a_superuser_may_add_change_or_delete(superuser_request, model):
    model_admin = admin.site._registry[model]
    assert model_admin.has_view_permission(superuser_request) is True
    assert model_admin.has_add_permission(superuser_request) is False
    assert model_admin.has_change_permission(superuser_request) is False
    assert model_admin.has_delete_permission(superuser_request) is False


def test_the_entry_list_shows_the_newest_first(superuser_request):
    # given
    make_log(3)
    checkpoint_create()
    # when
    response = admin.site._registry[AuditEntry].changelist_view(superuser_request)
    response.render()
    # then
    assert response.status_code == 200
    seqs = [e.seq for e in response.context_data["cl"].result_list]
    assert seqs == [3, 2, 1]
