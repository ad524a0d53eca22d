"""The collaboration operations as the gateway sees them: routes, bound parameters, policies."""

from __future__ import annotations

import re

import pytest

from contracts.claims import Role, Scope
from contracts.policy import Operation
from contracts.registry import operations_of
from contracts.v1 import collaboration as c
from contracts.v1 import push

OPS = operations_of("collaboration")


class TestOperations:
    def test_every_declared_operation_is_served(self) -> None:
        from services.collaboration.forums import Forums
        from services.collaboration.handlers import routes
        from services.collaboration.push import Pusher
        from services.collaboration.workspaces import Workspaces

        served = set(routes(Forums.__new__(Forums), Workspaces.__new__(Workspaces)))
        served |= set(Pusher.__new__(Pusher).routes())
        assert served == set(c.OPERATIONS + push.OPERATIONS) == set(OPS)

    @pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
    def test_path_parameters_are_request_fields(self, op: Operation) -> None:
        assert op.path.startswith("/v1/ecosystems/{eco}/")
        for param in re.findall(r"{(\w+)}", op.path):
            assert param in op.request.model_fields, (op.name, param)
        assert op.policy.eco_param == "eco" and not op.policy.public
        assert op.policy.scope is not None

    def test_scopes_follow_the_area(self) -> None:
        for op in OPS:
            assert op.policy.scope is not None
            area = "workspace" if ".workspaces." in op.name else "forum"
            if op is c.CREATE_CATEGORY:
                assert op.policy.scope is Scope.ADMIN
                continue
            assert op.policy.scope.value.startswith(area), op.name
            reads = op.method == "GET"
            assert op.policy.scope.value.endswith(":read" if reads else ":write") or (
                op
                in (c.MARK_READ, c.SET_NOTIFICATION_PREFERENCES, *push.OPERATIONS)  # my own inbox
            ), op.name

    def test_moderation_is_for_brokers_and_operators(self) -> None:
        moderation = [op for op in OPS if ".moderation." in op.name]
        assert len(moderation) == 5
        for op in moderation:
            assert op.policy.roles == frozenset({Role.BROKER, Role.OPERATOR})
        assert c.CREATE_CATEGORY.policy.roles == frozenset({Role.OPERATOR})
