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


"""Policy rules in code, the enforcer and the oslopolicy tools."""

import os
import pathlib
import subprocess
import sys

import pytest
from oslo_context import context
from oslo_policy import opts as policy_opts

from logrca import conf as logrca_conf
from logrca import policies
from logrca.api import policy
from logrca.policies import anomaly as rules
from logrca.policies import feedback as fb_rules
from logrca.policies import question as q_rules

ROOT = pathlib.Path(__file__).resolve().parents[4]
BIN = pathlib.Path(sys.executable).parent


@pytest.fixture
def enforcer():
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    conf.set_override('operators_role', 'rca-operator', group='api')
    return policy.PolicyEnforcer(conf)


def ctx(project, *roles):
    return context.RequestContext(project_id=project, user_id='u',
                                  roles=list(roles))


def test_every_api_rule_is_documented_and_project_scoped():
    documented = [r for r in policies.list_rules()
                  if r.name.startswith('logrca:')]
    assert {r.name for r in documented} == {
        rules.LIST, rules.LIST_ALL_PROJECTS, rules.GET,
        rules.GET_SERVICE_LEVEL, rules.GET_OTHER_PROJECT_EVIDENCE,
        rules.UPDATE, rules.UPDATE_SERVICE_LEVEL, rules.EXPLAIN,
        q_rules.ASK, q_rules.ASK_ALL_PROJECTS, q_rules.CONVERSATION_GET,
        fb_rules.CREATE, fb_rules.CREATE_SERVICE_LEVEL, fb_rules.LIST}
    for rule in documented:
        assert rule.scope_types == ['project'], rule.name
        assert rule.operations and rule.description, rule.name


@pytest.mark.parametrize('who,rule,target,allowed', [
    (('p1', 'reader'), rules.LIST, 'p1', True),
    (('p1', 'reader'), rules.LIST, 'p2', False),
    (('p1', 'reader'), rules.LIST_ALL_PROJECTS, 'p1', False),
    (('p1', 'admin'), rules.LIST_ALL_PROJECTS, 'p1', True),
    (('p1', 'admin'), rules.GET, 'p2', True),
    (('p1', 'reader'), rules.UPDATE, 'p1', False),
    (('p1', 'member', 'reader'), rules.UPDATE, 'p1', True),
    (('p1', 'member', 'reader'), rules.UPDATE, 'p2', False),
    (('p1', 'reader'), rules.GET_SERVICE_LEVEL, None, False),
    (('p1', 'reader', 'rca-operator'), rules.GET_SERVICE_LEVEL, None, True),
    (('p1', 'admin'), rules.GET_SERVICE_LEVEL, None, True),
    (('p1', 'member', 'reader'), rules.GET_OTHER_PROJECT_EVIDENCE, 'p1',
     False),
    (('p1', 'reader', 'rca-operator'), rules.UPDATE_SERVICE_LEVEL, None,
     True),
    (('p1', 'member', 'reader'), rules.UPDATE_SERVICE_LEVEL, None, False),
    (('p1', 'reader'), q_rules.ASK, 'p1', True),
    (('p1', 'reader'), q_rules.ASK_ALL_PROJECTS, 'p1', False),
    (('p1', 'admin'), q_rules.ASK_ALL_PROJECTS, 'p1', True),
    (('p1', 'reader'), q_rules.CONVERSATION_GET, 'p1', True),
    (('p1', 'reader'), q_rules.CONVERSATION_GET, 'p2', False),
    (('p1', 'reader'), fb_rules.CREATE, 'p1', False),
    (('p1', 'member', 'reader'), fb_rules.CREATE, 'p1', True),
    (('p1', 'member', 'reader'), fb_rules.CREATE, 'p2', False),
    (('p1', 'member', 'reader'), fb_rules.CREATE_SERVICE_LEVEL, None,
     False),
    (('p1', 'reader', 'rca-operator'), fb_rules.CREATE_SERVICE_LEVEL, None,
     True),
    (('p1', 'reader'), fb_rules.LIST, 'p1', True),
    (('p1', 'reader'), fb_rules.LIST, 'p2', False),
])
def test_personas(enforcer, who, rule, target, allowed):
    assert enforcer.allowed(ctx(*who), rule,
                            {'project_id': target}) is allowed


def test_system_scoped_token_is_refused(enforcer):
    system = context.RequestContext(system_scope='all', roles=['admin'])
    assert not enforcer.allowed(system, rules.LIST_ALL_PROJECTS,
                                {'project_id': None})


def test_authorize_raises_403(enforcer):
    from werkzeug import exceptions

    with pytest.raises(exceptions.Forbidden):
        enforcer.authorize(ctx('p1', 'reader'), rules.UPDATE,
                           {'project_id': 'p1'})


def test_policy_file_changes_apply_within_the_reload_interval(
        tmp_path, monkeypatch):
    policy_file = tmp_path / 'policy.yaml'
    policy_file.write_text('"%s": "!"\n' % rules.LIST)
    conf = logrca_conf.new_conf()
    conf([], project='logrca', default_config_files=[])
    # Copies of oslo.policy's options: set_defaults() would change them for
    # every later test.
    for group, options in policy_opts.list_opts():
        conf.register_opts(options, group=group)
    conf.set_override('policy_file', str(policy_file), group='oslo_policy')
    clock = [1000.0]
    monkeypatch.setattr(policy.time, 'monotonic', lambda: clock[0])
    enforcer = policy.PolicyEnforcer(conf)
    reader = ctx('p1', 'reader')
    target = {'project_id': 'p1'}
    assert not enforcer.allowed(reader, rules.LIST, target)
    policy_file.write_text('"%s": "role:reader"\n' % rules.LIST)
    # A new modification time, whatever the file system's resolution.
    os.utime(policy_file, (2e9, 2e9))
    clock[0] += policy.RELOAD_INTERVAL / 2
    assert not enforcer.allowed(reader, rules.LIST, target)
    clock[0] += policy.RELOAD_INTERVAL
    assert enforcer.allowed(reader, rules.LIST, target)


def _run(tool, *args):
    return subprocess.run([str(BIN / tool), *args], check=True,
                          capture_output=True, text=True, cwd=ROOT).stdout


def test_sample_generator_finds_the_rules_through_entry_points():
    out = _run('oslopolicy-sample-generator', '--namespace', 'logrca')
    assert '#"logrca:anomaly:list:all_projects": "rule:context_is_admin"' \
        in out
    assert 'Intended scope(s): project' in out


def test_policy_generator_uses_the_enforcer_entry_point():
    out = _run('oslopolicy-policy-generator', '--namespace', 'logrca')
    assert '"logrca:anomaly:update": ' in out


def test_policy_sample_is_current(tmp_path):
    out = tmp_path / 'policy.yaml.sample'
    _run('oslopolicy-sample-generator', '--config-file',
         str(ROOT / 'etc/logrca/logrca-policy-generator.conf'),
         '--output-file', str(out))
    committed = (ROOT / 'etc/logrca/policy.yaml.sample').read_text()
    assert out.read_text() == committed, (
        'etc/logrca/policy.yaml.sample is stale: run oslopolicy-sample-'
        'generator --config-file etc/logrca/logrca-policy-generator.conf')
