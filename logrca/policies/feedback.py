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

"""Policy rules of operator feedback on the cause of an anomaly."""

from oslo_policy import policy

from logrca.policies import base

CREATE = 'logrca:feedback:create'
CREATE_SERVICE_LEVEL = 'logrca:feedback:create:service_level'
LIST = 'logrca:feedback:list'

_SCOPES = ['project']
_PATH = '/v1/anomalies/{anomaly_id}/feedback'

rules = [
    policy.DocumentedRuleDefault(
        name=CREATE,
        check_str=base.ADMIN_OR_PROJECT_MEMBER,
        description='Confirm or correct the explained cause of a '
                    'project\'s anomaly (it feeds the knowledge base).',
        operations=[{'method': 'POST', 'path': _PATH}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=CREATE_SERVICE_LEVEL,
        check_str=base.ADMIN_OR_OPERATOR,
        description='Confirm or correct the cause of an anomaly that '
                    'belongs to no project.',
        operations=[{'method': 'POST', 'path': _PATH}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=base.ADMIN_OR_PROJECT_READER,
        description='List the feedback given on an anomaly the caller may '
                    'see.',
        operations=[{'method': 'GET', 'path': _PATH}],
        scope_types=_SCOPES),
]


def list_rules():
    return rules
