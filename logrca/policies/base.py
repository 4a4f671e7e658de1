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

"""Base policy rules: the personas every logrca rule is built from."""

from oslo_policy import policy

# Personas (oslo.policy 6 enforces new defaults and scopes): every rule is
# project scoped; roles imply each other in Keystone (admin > member >
# reader), so a member token also carries the reader role.
ADMIN = 'rule:context_is_admin'
PROJECT_READER = 'role:reader and project_id:%(project_id)s'
PROJECT_MEMBER = 'role:member and project_id:%(project_id)s'
# The operators role is read from ``[api] operators_role`` and passed in
# every policy target as ``operators_role``; RoleCheck substitutes it.
OPERATOR = 'role:%(operators_role)s'

ADMIN_OR_PROJECT_READER = '(%s) or (%s)' % (ADMIN, PROJECT_READER)
ADMIN_OR_PROJECT_MEMBER = '(%s) or (%s)' % (ADMIN, PROJECT_MEMBER)
ADMIN_OR_OPERATOR = '(%s) or (%s)' % (ADMIN, OPERATOR)

rules = [
    policy.RuleDefault(
        name='context_is_admin',
        check_str='role:admin',
        description='Decides what an administrator is: one who may see '
                    'and change anomalies of every project.'),
]


def list_rules():
    return rules
