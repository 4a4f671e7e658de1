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

"""Policy rules of anomalies, their evidence and explanations."""

from oslo_policy import policy

from logrca.policies import base

PREFIX = 'logrca:anomaly:%s'
LIST = PREFIX % 'list'
LIST_ALL_PROJECTS = PREFIX % 'list:all_projects'
GET = PREFIX % 'get'
GET_SERVICE_LEVEL = PREFIX % 'get:service_level'
GET_OTHER_PROJECT_EVIDENCE = PREFIX % 'get:other_project_evidence'
UPDATE = PREFIX % 'update'
UPDATE_SERVICE_LEVEL = PREFIX % 'update:service_level'
EXPLAIN = PREFIX % 'explanation:get'

_SCOPES = ['project']

rules = [
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=base.ADMIN_OR_PROJECT_READER,
        description='List the anomalies of a project (the token\'s '
                    'project unless ``project_id`` is given).',
        operations=[{'method': 'GET', 'path': '/v1/anomalies'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=LIST_ALL_PROJECTS,
        check_str=base.ADMIN,
        description='List the anomalies of every project '
                    '(``all_projects=true``).',
        operations=[{'method': 'GET',
                     'path': '/v1/anomalies?all_projects=true'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=GET,
        check_str=base.ADMIN_OR_PROJECT_READER,
        description='Show an anomaly of a project with its evidence.',
        operations=[{'method': 'GET', 'path': '/v1/anomalies/{anomaly_id}'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=GET_SERVICE_LEVEL,
        check_str=base.ADMIN_OR_OPERATOR,
        description='See anomalies that belong to no project (service-'
                    'level faults), in lists and by id. ``operators_role`` '
                    'is the ``[api] operators_role`` option.',
        operations=[{'method': 'GET', 'path': '/v1/anomalies'},
                    {'method': 'GET',
                     'path': '/v1/anomalies/{anomaly_id}'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=GET_OTHER_PROJECT_EVIDENCE,
        check_str=base.ADMIN,
        description='See evidence lines whose request belongs to another '
                    'project than the caller\'s; others get them removed.',
        operations=[{'method': 'GET',
                     'path': '/v1/anomalies/{anomaly_id}'},
                    {'method': 'GET',
                     'path': '/v1/anomalies/{anomaly_id}/explanation'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=UPDATE,
        check_str=base.ADMIN_OR_PROJECT_MEMBER,
        description='Change the status of a project\'s anomaly '
                    '(acknowledge, resolve, mark false positive).',
        operations=[{'method': 'PATCH',
                     'path': '/v1/anomalies/{anomaly_id}'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=UPDATE_SERVICE_LEVEL,
        check_str=base.ADMIN_OR_OPERATOR,
        description='Change the status of an anomaly that belongs to no '
                    'project.',
        operations=[{'method': 'PATCH',
                     'path': '/v1/anomalies/{anomaly_id}'}],
        scope_types=_SCOPES),
    policy.DocumentedRuleDefault(
        name=EXPLAIN,
        check_str=base.ADMIN_OR_PROJECT_READER,
        description='Show the root-cause explanation of an anomaly (or, '
                    'until one is computed, a summary of its evidence).',
        operations=[{'method': 'GET',
                     'path': '/v1/anomalies/{anomaly_id}/explanation'}],
        scope_types=_SCOPES),
]


def list_rules():
    return rules
