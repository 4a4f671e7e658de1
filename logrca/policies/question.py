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

"""Policy rules of questions and their conversations."""

from oslo_policy import policy

from logrca.policies import base

ASK = 'logrca:question:create'
ASK_ALL_PROJECTS = 'logrca:question:all_projects'
CONVERSATION_GET = 'logrca:conversation:get'

_SCOPES = ['project']

rules = [
    policy.DocumentedRuleDefault(
        name=ASK,
        check_str=base.ADMIN_OR_PROJECT_READER,
        description='Ask a question about the anomalies of the token\'s '
                    'project (answered from its anomalies only), or follow '
                    'up in a conversation of that project.',
        operations=[{'method': 'POST', 'path': '/v1/questions'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=ASK_ALL_PROJECTS,
        check_str=base.ADMIN,
        description='Questions are answered from the anomalies of every '
                    'project (and service-level ones), not only the '
                    'token\'s project.',
        operations=[{'method': 'POST', 'path': '/v1/questions'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=CONVERSATION_GET,
        check_str=base.ADMIN_OR_PROJECT_READER,
        description='Show the questions and answers of a conversation of '
                    'the project.',
        operations=[{'method': 'GET',
                     'path': '/v1/conversations/{conversation_id}'}],
        scope_types=_SCOPES),
]


def list_rules():
    return rules
