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

"""The devstack plugin, sourced by bash with devstack's functions recorded.

A full devstack cannot run here: each devstack function the plugin calls
is replaced by a recorder, every phase is run, and the calls and their
arguments are checked against the code (options that exist, console
scripts, the WSGI module, the catalog service type).
"""

import ast
import collections
import pathlib
import subprocess
import sys
import tomllib

import pytest
from oslo_config import generator

from logrca.osc import client as osc_client

ROOT = pathlib.Path(__file__).resolve().parents[4]
DEVSTACK = ROOT / 'devstack'
BIN = pathlib.Path(sys.executable).parent
SEP = '\x1f'
PHASES = (('stack', 'install'), ('stack', 'post-config'),
          ('stack', 'extra'), ('stack', 'test-config'), ('unstack',),
          ('clean',))
# devstack functions the plugin may call; each becomes a recorder.
RECORDED = (
    'setup_develop', 'iniset', 'iniset_rpc_backend', 'recreate_database',
    'configure_keystone_authtoken_middleware', 'write_uwsgi_config',
    'remove_uwsgi_config', 'create_service_user', 'get_or_create_service',
    'get_or_create_endpoint', 'run_process', 'stop_process',
    'echo_summary', 'sudo', 'define_plugin')
DEFAULT_SERVICES = ('key,mysql,rabbit,n-api,n-cond,n-sch,n-cpu,placement-api,'
                    'g-api,q-svc,q-agt,tempest')
# Library option namespaces logrca.conf may set (as in the sample config).
NAMESPACES = ('logrca', 'oslo.db', 'oslo.log', 'oslo.messaging',
              'oslo.policy', 'keystonemiddleware.auth_token')

HARNESS = r'''
set -o errexit
set -o pipefail
RECORD=%(record)s
function record {
    local IFS=$'\x1f'
    printf '%%s\n' "$*" >> "$RECORD"
}
function command_not_found_handle {
    record MISSING "$1"
    return 127
}
for fn in %(recorded)s; do
    eval "function $fn { record $fn \"\$@\"; }"
done
function enable_service {
    local s
    for s in "$@"; do
        ENABLED_SERVICES+=",$s"
    done
}
# devstack's is_service_enabled: any of the names; nova, cinder, neutron,
# glance, heat and keystone also stand for their own services.
function is_service_enabled {
    local s e
    for s in "$@"; do
        for e in ${ENABLED_SERVICES//,/ }; do
            [[ "$e" == "$s" ]] && return 0
            [[ "$s" == nova && "$e" == n-* ]] && return 0
            [[ "$s" == cinder && "$e" == c-* ]] && return 0
            [[ "$s" == neutron && ( "$e" == q-* || "$e" == neutron-* ) ]] \
                && return 0
            [[ "$s" == glance && "$e" == g-* ]] && return 0
            [[ "$s" == heat && "$e" == h-* ]] && return 0
            [[ "$s" == keystone && "$e" == key ]] && return 0
        done
    done
    return 1
}
function trueorfalse {
    local default=$1
    local value=${!2:-$default}
    case "$value" in
        1|yes|Yes|YES|true|True|TRUE|on|On|ON) echo True ;;
        *) echo False ;;
    esac
}
function get_python_exec_prefix {
    echo %(fakebin)s
}
function get_notification_url {
    echo rabbit://stackrabbit:secret@192.0.2.10:5672/
}
function database_connection_url {
    echo "mysql+pymysql://root:secret@127.0.0.1/$1?charset=utf8"
}
function which {
    echo /usr/local/bin/$1
}
DEST=%(tmp)s/opt
DATA_DIR=%(tmp)s/data
STACK_USER=stack
SERVICE_HOST=192.0.2.10
SERVICE_PROTOCOL=http
REGION_NAME=RegionOne
ENABLE_DEBUG_LOG_LEVEL=True
NOVA_CONF=/etc/nova/nova.conf
CINDER_CONF=/etc/cinder/cinder.conf
NEUTRON_CONF=/etc/neutron/neutron.conf
TEMPEST_CONFIG=/opt/stack/tempest/etc/tempest.conf
LOGRCA_DIR=%(root)s
LOGRCA_CONF_DIR=%(tmp)s/etc/logrca
ENABLED_SERVICES=%(services)s
source $LOGRCA_DIR/devstack/settings
%(after_settings)s
for phase in %(phases)s; do
    record PHASE $phase
    source $LOGRCA_DIR/devstack/plugin.sh ${phase/:/ }
done
'''


def run_plugin(tmp_path, services=DEFAULT_SERVICES, after_settings=''):
    """Run every phase; return {phase: [(function, args...), ...]}."""
    record = tmp_path / 'calls'
    fakebin = tmp_path / 'bin'
    fakebin.mkdir()
    for script in ('logrca-manage', 'logrca-agent', 'logrca-conductor',
                   'logrca-api', 'logrca-status'):
        path = fakebin / script
        path.write_text('#!/bin/bash\n(IFS=$\'\\x1f\'; printf "%%s\\n" '
                        '"EXEC$IFS$0$IFS$*") >> %s\n' % record)
        path.chmod(0o755)
    script = HARNESS % {
        'record': record, 'recorded': ' '.join(RECORDED),
        'fakebin': fakebin, 'tmp': tmp_path, 'root': ROOT,
        'services': services, 'after_settings': after_settings,
        'phases': ' '.join(':'.join(p) for p in PHASES)}
    proc = subprocess.run(['bash', '-c', script], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = collections.defaultdict(list)
    phase = 'settings'
    for line in record.read_text().splitlines():
        fields = line.split(SEP)
        if fields[0] == 'PHASE':
            phase = fields[1]
            continue
        calls[phase].append(tuple(fields))
    return calls


def find(calls, name):
    return [c[1:] for c in calls if c[0] == name]


@pytest.fixture(scope='module')
def calls(tmp_path_factory):
    return run_plugin(tmp_path_factory.mktemp('devstack'))


@pytest.fixture(scope='module')
def conf_file(calls):
    return [c for c in find(calls['stack:post-config'], 'iniset_rpc_backend')
            ][0][1]


def test_no_undefined_function_is_called(calls):
    missing = [c for phase in calls.values() for c in phase
               if c[0] == 'MISSING']
    assert missing == []


def test_settings_enable_the_services(calls):
    assert ('define_plugin', 'logrca') in calls['settings']


def test_install(calls):
    assert find(calls['stack:install'], 'setup_develop') == [(str(ROOT),)]


def _logrca_inisets(calls, conf_file):
    return {(c[1], c[2]): c[3]
            for c in find(calls['stack:post-config'], 'iniset')
            if c[0] == conf_file}


def test_post_config_writes_real_options(calls, conf_file):
    values = _logrca_inisets(calls, conf_file)
    known = {(getattr(group, 'name', group) or 'DEFAULT', opt.dest)
             for _ns, groups in generator._list_opts(NAMESPACES)
             for group, opts in groups for opt in opts}
    unknown = [k for k in values if k not in known]
    assert unknown == [], 'iniset of options that do not exist'
    assert values[('database', 'connection')].startswith(
        'mysql+pymysql://root:secret@127.0.0.1/logrca')
    assert values[('oslo_messaging_notifications', 'driver')] == \
        'messagingv2'
    assert values[('conductor', 'retention_days')] == '30'
    assert values[('agent', 'detectors')] == 'baseline'
    assert values[('agent', 'notification_exchanges')] == \
        'nova,neutron,glance,keystone'


def test_agent_follows_the_journal_of_enabled_services(calls, conf_file):
    units = _logrca_inisets(calls, conf_file)[('agent', 'journal_units')]
    units = units.split(',')
    assert 'devstack@n-cpu' in units and 'devstack@key' in units
    assert 'devstack@q-svc' in units
    assert 'devstack@c-vol' not in units, 'cinder is not enabled'


def test_rpc_database_and_keystone(calls, conf_file):
    post = calls['stack:post-config']
    assert find(post, 'iniset_rpc_backend') == [('logrca', conf_file)]
    assert find(post, 'configure_keystone_authtoken_middleware') == [
        (conf_file, 'logrca')]
    assert find(post, 'create_service_user') == [('logrca', 'admin')]


def test_catalog_type_is_logrca_own(calls):
    post = calls['stack:post-config']
    (service,) = find(post, 'get_or_create_service')
    assert service[:2] == ('logrca', osc_client.SERVICE_TYPE)
    assert service[1] not in ('rca', 'root-cause-analysis')
    (endpoint,) = find(post, 'get_or_create_endpoint')
    assert endpoint == (osc_client.SERVICE_TYPE, 'RegionOne',
                        'http://192.0.2.10/log-analysis')


def test_uwsgi_serves_the_wsgi_module_that_exists(calls, conf_file):
    (uwsgi,) = find(calls['stack:post-config'], 'write_uwsgi_config')
    ini, wsgi, url, http, name = uwsgi
    assert (url, http, name) == ('/log-analysis', '', 'logrca-api')
    module, _sep, attribute = wsgi.partition(':')
    path = ROOT.joinpath(*module.split('.')).with_suffix('.py')
    assert path.is_file(), '%s names no module of the repository' % wsgi
    tree = ast.parse(path.read_text())
    assigned = {t.id for node in ast.walk(tree)
                if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert attribute in assigned
    assert ('iniset', ini, 'uwsgi', 'env',
            'LOGRCA_CONFIG_FILE=%s' % conf_file) in calls['stack:post-config']


def _scripts():
    data = tomllib.loads((ROOT / 'pyproject.toml').read_text())
    return set(data['project']['scripts'])


def test_extra_syncs_database_then_starts_services(calls, conf_file):
    extra = calls['stack:extra']
    assert find(extra, 'recreate_database') == [('logrca',)]
    (sync,) = find(extra, 'EXEC')
    binary = pathlib.Path(sync[0]).name
    assert binary in _scripts()
    assert sync[1:] == ('--config-file', conf_file, 'db', 'sync')
    names = [c[0] for c in extra]
    assert names.index('recreate_database') < names.index('EXEC') < \
        names.index('run_process')
    processes = {c[0]: c[1:] for c in find(extra, 'run_process')}
    assert set(processes) == {'logrca-api', 'logrca-agent',
                              'logrca-conductor'}
    api_command = processes['logrca-api'][0].split()
    assert api_command[0].endswith('/uwsgi')
    ini = find(calls['stack:post-config'], 'write_uwsgi_config')[0][0]
    assert api_command[-2:] == ['--ini', ini]
    for name in ('logrca-agent', 'logrca-conductor'):
        command = processes[name][0].split()
        assert pathlib.Path(command[0]).name == name
        assert name in _scripts()
        assert command[1:] == ['--config-file', conf_file]
    assert processes['logrca-agent'][1] == 'systemd-journal'


def test_notifiers_of_other_projects(calls):
    post = calls['stack:post-config']
    assert ('iniset', '/etc/nova/nova.conf', 'oslo_messaging_notifications',
            'driver', 'messagingv2') in post
    assert ('iniset', '/etc/neutron/neutron.conf',
            'oslo_messaging_notifications', 'driver', 'messagingv2') in post
    assert not any(c[1] == '/etc/cinder/cinder.conf'
                   for c in find(post, 'iniset'))


def test_test_config_unstack_clean(calls):
    assert find(calls['stack:test-config'], 'iniset') == [
        ('/opt/stack/tempest/etc/tempest.conf', 'service_available',
         'logrca', 'True')]
    assert sorted(find(calls['unstack'], 'stop_process')) == [
        ('logrca-agent',), ('logrca-api',), ('logrca-conductor',)]
    assert find(calls['clean'], 'remove_uwsgi_config')


def test_disabled_plugin_does_nothing(tmp_path):
    calls = run_plugin(
        tmp_path, after_settings='ENABLED_SERVICES=key,n-cpu')
    for phase, phase_calls in calls.items():
        if phase != 'settings':
            assert phase_calls == [], phase


def test_journal_units_override(tmp_path):
    calls = run_plugin(
        tmp_path, after_settings='LOGRCA_JOURNAL_UNITS=devstack@x,foo')
    units = [c[3] for c in find(calls['stack:post-config'], 'iniset')
             if c[1:3] == ('agent', 'journal_units')]
    assert units == ['devstack@x,foo']


def test_bashate_clean():
    bashate = str(BIN / 'bashate')
    subprocess.run([bashate, '--error', 'E', str(DEVSTACK / 'plugin.sh'),
                    str(DEVSTACK / 'lib' / 'logrca')], check=True,
                   timeout=60)
    # settings is sourced, never run: no #! line (E005) is expected.
    subprocess.run([bashate, '--error', 'E', '--ignore', 'E005',
                    str(DEVSTACK / 'settings')], check=True, timeout=60)
