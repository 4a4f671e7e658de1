# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Policy enforcement of the API (oslo.policy, rules in logrca.policies)."""

import time

from oslo_log import log
from oslo_policy import policy
from werkzeug import exceptions

from logrca import conf as logrca_conf
from logrca import policies

LOG = log.getLogger(__name__)


# Seconds between two looks for changed policy files.
RELOAD_INTERVAL = 1.0


class _Enforcer(policy.Enforcer):
    """An oslo.policy Enforcer that looks for changed policy files at most
    every :data:`RELOAD_INTERVAL` seconds.

    oslo.policy looks at every check (a stat of each configuration
    directory for the policy file, then of the policy directories): about
    a fifth of the CPU time of a check.
    """

    _next_load = 0.0

    def load_rules(self, force_reload=False):
        now = time.monotonic()
        if force_reload or not self.rules or now >= self._next_load:
            super().load_rules(force_reload)
            self._next_load = now + RELOAD_INTERVAL

    def clear(self):
        super().clear()
        self._next_load = 0.0


class PolicyEnforcer:
    """Checks API calls against the rules of :mod:`logrca.policies`.

    Wraps an :class:`oslo_policy.policy.Enforcer` built on ``conf``; every
    target gets ``operators_role`` from ``[api] operators_role`` so that
    rules may name that role.
    """

    def __init__(self, conf):
        self.conf = conf
        self.enforcer = _Enforcer(conf)
        self.enforcer.register_defaults(policies.list_rules())

    def _target(self, target):
        full = {'operators_role': self.conf.api.operators_role}
        full.update(target or {})
        return full

    def allowed(self, context, rule, target=None):
        """Return True when ``context`` may do ``rule`` on ``target``."""
        try:
            return self.enforcer.authorize(
                rule, self._target(target), context.to_policy_values(),
                do_raise=False)
        except policy.InvalidScope:
            LOG.debug('Policy %s: token scope not allowed', rule)
            return False

    def authorize(self, context, rule, target=None):
        """Raise 403 :class:`werkzeug.exceptions.Forbidden` if denied."""
        if not self.allowed(context, rule, target):
            LOG.debug('Policy %s refused user %s of project %s', rule,
                      context.user_id, context.project_id)
            raise exceptions.Forbidden(
                description='Policy does not allow %s.' % rule)


def get_enforcer():
    """Return an Enforcer for the oslopolicy-* tools (entry point).

    The tools call this without arguments; it reads logrca's default config
    files (no command line: the tools own ``sys.argv``).
    """
    conf = logrca_conf.new_conf()
    conf([], project='logrca')
    return PolicyEnforcer(conf).enforcer
