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


"""A real Keystone on loopback (SQLite, fernet tokens) for tests.

The ``keystone_server`` pytest fixture is session scoped: one Keystone for
the whole test run, set up in about ten seconds. Import it into a
``conftest.py`` to use it::

    from logrca.tests.keystone_fixture import keystone_server  # noqa

Keystone (PyPI ``keystone``) must be installed in the virtualenv; without
it the fixture skips, or fails under ``CI=true``.

Keystone runs in two subprocesses with a clean ``sys.argv``: one runs the
``keystone-manage`` steps (``db_sync``, ``fernet_setup``,
``credential_setup``, ``bootstrap``) in one interpreter, which saves the
three seconds each extra start would cost, then one serves
``keystone.server.wsgi.initialize_public_application()`` with werkzeug.
"""

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HOST = '127.0.0.1'
REGION = 'RegionOne'
ADMIN_PASSWORD = 'admin-' + uuid.uuid4().hex[:12]
DOMAIN = 'Default'

_CONFIG = """\
[DEFAULT]
log_file = {workdir}/keystone.log
[database]
connection = sqlite:///{workdir}/keystone.sqlite
[fernet_tokens]
key_repository = {workdir}/fernet-keys
[fernet_receipts]
key_repository = {workdir}/fernet-keys
[credential]
key_repository = {workdir}/credential-keys
[identity]
# The bcrypt minimum: tokens are issued in milliseconds, not seconds.
password_hash_rounds = 4
"""


def _setup_main(config_file, public_url, password):
    """Run the keystone-manage steps in this (child) interpreter."""
    import keystone.conf
    from keystone.cmd import cli

    conf = keystone.conf.CONF
    owner = ['--keystone-user', str(os.getuid()),
             '--keystone-group', str(os.getgid())]
    for command in (
            ['db_sync'],
            ['fernet_setup'] + owner,
            ['credential_setup'] + owner,
            ['bootstrap', '--bootstrap-password', password,
             '--bootstrap-public-url', public_url,
             '--bootstrap-internal-url', public_url,
             '--bootstrap-region-id', REGION]):
        # keystone-manage parses its arguments once per process; let it
        # parse again for the next step.
        conf.reset()
        conf.clear()
        conf._args = None
        cli.main(argv=['keystone-manage', '--config-file', config_file]
                 + command)


def _serve_main(config_file, port):
    """Serve Keystone's public application (in the child interpreter)."""
    os.environ['OS_KEYSTONE_CONFIG_FILES'] = config_file
    from keystone.server import wsgi
    from werkzeug import serving

    application = wsgi.initialize_public_application()
    serving.make_server(HOST, int(port), application,
                        threaded=True).serve_forever()


def free_port():
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_http(url, process=None, timeout=60.0, log_file=None):
    """Wait until ``url`` answers; raise RuntimeError if it never does."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    tail = ''
    if log_file and os.path.exists(log_file):
        with open(log_file, errors='replace') as f:
            tail = f.read()[-3000:]
    raise RuntimeError('%s did not answer in %.0f s:\n%s'
                       % (url, timeout, tail))


class KeystoneServer:
    """A Keystone server for tests, with helpers to create what they need.

    :ivar url: the identity endpoint, ``http://127.0.0.1:PORT/v3``.
    """

    def __init__(self, workdir=None, python=sys.executable):
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix='keystone-')
        self.python = python
        self.port = free_port()
        self.url = 'http://%s:%d/v3' % (HOST, self.port)
        self.config_file = os.path.join(self.workdir, 'keystone.conf')
        self.admin_password = ADMIN_PASSWORD
        self._process = None
        self._admin = None

    def _child(self, *args):
        # A clean argv and environment for Keystone's own modules.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        return [self.python, '-c',
                'import sys; a = sys.argv[1:]; sys.argv = sys.argv[:1];'
                ' from logrca.tests import keystone_fixture as k;'
                ' getattr(k, a[0])(*a[1:])'] + list(args), env

    def start(self):
        with open(self.config_file, 'w') as f:
            f.write(_CONFIG.format(workdir=self.workdir))
        cmd, env = self._child('_setup_main', self.config_file, self.url,
                               self.admin_password)
        result = subprocess.run(cmd, env=env, capture_output=True,
                                text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError('keystone-manage failed:\n%s'
                               % result.stderr[-3000:])
        cmd, env = self._child('_serve_main', self.config_file,
                               str(self.port))
        self._stdout = open(os.path.join(self.workdir, 'server.out'), 'w')
        self._process = subprocess.Popen(
            cmd, env=env, stdout=self._stdout, stderr=subprocess.STDOUT)
        wait_for_http(self.url, self._process,
                      log_file=os.path.join(self.workdir, 'server.out'))
        return self

    def stop(self):
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
            self._stdout.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- sessions and clients -----------------------------------------------

    def session(self, username, password, project_name):
        """A keystoneauth session scoped to a project of the Default domain.
        """
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(auth_url=self.url, username=username,
                           password=password, project_name=project_name,
                           user_domain_name=DOMAIN,
                           project_domain_name=DOMAIN)
        return session.Session(auth=auth)

    def admin_client(self):
        """A python-keystoneclient v3 client of the bootstrap admin."""
        if self._admin is None:
            from keystoneclient.v3 import client

            self._admin = client.Client(session=self.session(
                'admin', self.admin_password, 'admin'))
        return self._admin

    def role_id(self, name):
        """The id of a role, created if missing (e.g. ``service``)."""
        client = self.admin_client()
        found = client.roles.list(name=name)
        if found:
            return found[0].id
        return client.roles.create(name=name).id

    def create_project(self, name):
        return self.admin_client().projects.create(
            name=name, domain=DOMAIN.lower()).id

    def project_id(self, name):
        return self.admin_client().projects.list(name=name)[0].id

    def create_user(self, name, password, project_id, roles):
        """Create a user with ``roles`` (names) on a project; its id."""
        client = self.admin_client()
        user = client.users.create(name=name, password=password,
                                   domain=DOMAIN.lower(),
                                   default_project=project_id)
        for role in roles:
            client.roles.grant(self.role_id(role), user=user.id,
                               project=project_id)
        return user.id

    def create_service_user(self, name, password):
        """A service user (``service`` role in project ``service``) able to
        validate tokens, as keystonemiddleware needs."""
        client = self.admin_client()
        found = client.projects.list(name='service')
        project = (found[0].id if found else self.create_project('service'))
        return self.create_user(name, password, project, ['service'])

    def register_service(self, service_type, name, url):
        """Put a service and its public/internal endpoints in the catalog.
        """
        client = self.admin_client()
        service = client.services.create(name=name, type=service_type)
        for interface in ('public', 'internal'):
            client.endpoints.create(service=service.id, url=url,
                                    interface=interface, region=REGION)
        return service.id

    def authtoken_options(self, username, password):
        """``[keystone_authtoken]`` options (keystonemiddleware 13)."""
        return {
            'www_authenticate_uri': self.url,
            'auth_url': self.url,
            'auth_type': 'password',
            'username': username,
            'password': password,
            'user_domain_name': DOMAIN,
            'project_name': 'service',
            'project_domain_name': DOMAIN,
            'region_name': REGION,
        }

    def openstack_env(self, username, password, project_name):
        """Environment variables for the ``openstack`` CLI."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        env.update({
            'OS_AUTH_URL': self.url,
            'OS_AUTH_TYPE': 'password',
            'OS_USERNAME': username,
            'OS_PASSWORD': password,
            'OS_PROJECT_NAME': project_name,
            'OS_USER_DOMAIN_NAME': DOMAIN,
            'OS_PROJECT_DOMAIN_NAME': DOMAIN,
            'OS_IDENTITY_API_VERSION': '3',
            'OS_REGION_NAME': REGION,
            'OS_INTERFACE': 'public',
        })
        return env


def _keystone_importable():
    # Only look: importing keystone.conf would call
    # oslo_messaging.set_transport_defaults(control_exchange='keystone'),
    # which changes the default exchange of every later RPC client in this
    # test process (keystone itself runs in subprocesses).
    return importlib.util.find_spec('keystone') is not None


_SHARED = []


def shared_server():
    """The Keystone of this test process, started on first use.

    Every conftest that imports :func:`keystone_server` gets its own copy of
    the fixture; they all share this one server, stopped at exit.
    """
    if not _SHARED:
        from logrca.tests import services

        if not _keystone_importable():
            services.unavailable('Keystone (PyPI keystone) is not installed '
                                 'in this virtualenv')
        server = KeystoneServer().start()
        atexit.register(server.stop)
        _SHARED.append(server)
    return _SHARED[0]


def _make_fixture():
    import pytest

    @pytest.fixture(scope='session')
    def keystone_server():
        """A running :class:`KeystoneServer`, shared by the whole session."""
        return shared_server()

    return keystone_server


keystone_server = _make_fixture()
