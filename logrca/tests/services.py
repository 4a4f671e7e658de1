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

"""Helpers for tests that need a real service (RabbitMQ, MariaDB, PostgreSQL).

Outside CI a test whose service is unreachable is skipped with the reason;
under ``CI=true`` it fails, so that CI never passes by skipping. The URLs
can be overridden with ``LOGRCA_TEST_RABBIT_URL``, ``LOGRCA_TEST_MYSQL_URL``
and ``LOGRCA_TEST_POSTGRES_URL``.
"""

import contextlib
import os
import shutil
import socket
import tempfile
import unittest
import uuid

import sqlalchemy as sa

RABBIT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
MYSQL_URL = 'mysql+pymysql://root@127.0.0.1:3306/test'
POSTGRES_URL = 'postgresql+psycopg2://postgres@127.0.0.1:5432/test'

BACKENDS = ('sqlite', 'mysql', 'postgresql')


class ServiceUnavailable(AssertionError):
    """A service a test needs is unreachable while running under CI."""


def in_ci():
    """True when running under CI (``CI`` set to true/1/yes)."""
    return os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')


def unavailable(reason):
    """Skip the current test, or fail it under CI."""
    if in_ci():
        raise ServiceUnavailable('CI=true and ' + reason)
    raise unittest.SkipTest(reason)


def _port_open(host, port, timeout=2.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_rabbit():
    """The oslo.messaging transport URL of the test RabbitMQ."""
    url = os.environ.get('LOGRCA_TEST_RABBIT_URL', RABBIT_URL)
    host_port = url.split('@')[-1].split('/')[0]
    host, _sep, port = host_port.rpartition(':')
    if not _port_open(host or '127.0.0.1', int(port or 5672)):
        unavailable('RabbitMQ is unreachable at %s' % host_port)
    return url


def _require_sql(env, default, name):
    url = os.environ.get(env, default)
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text('SELECT 1'))
        engine.dispose()
    except Exception as exc:  # any driver error means unreachable here
        unavailable('%s is unreachable at %s: %s'
                    % (name, sa.engine.make_url(url).render_as_string(),
                       exc))
    return url


def require_mysql():
    """An admin SQLAlchemy URL of the test MariaDB/MySQL server."""
    return _require_sql('LOGRCA_TEST_MYSQL_URL', MYSQL_URL, 'MariaDB')


def require_postgres():
    """An admin SQLAlchemy URL of the test PostgreSQL server."""
    return _require_sql('LOGRCA_TEST_POSTGRES_URL', POSTGRES_URL,
                        'PostgreSQL')


@contextlib.contextmanager
def temp_database(backend):
    """Yield the URL of a new, empty database, dropped afterwards.

    :param backend: ``sqlite``, ``mysql`` or ``postgresql``.
    """
    if backend == 'sqlite':
        tmp = tempfile.mkdtemp(prefix='logrca-db-')
        try:
            yield 'sqlite:///%s' % os.path.join(tmp, 'logrca.sqlite')
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if backend == 'mysql':
        admin = require_mysql()
        create = 'CREATE DATABASE %s CHARACTER SET utf8mb4'
        drop = 'DROP DATABASE IF EXISTS %s'
    elif backend == 'postgresql':
        admin = require_postgres()
        create = "CREATE DATABASE %s ENCODING 'UTF8' TEMPLATE template0"
        drop = 'DROP DATABASE IF EXISTS %s WITH (FORCE)'
    else:
        raise ValueError('unknown backend %r' % backend)
    name = 'logrca_test_%s' % uuid.uuid4().hex[:12]
    engine = sa.create_engine(admin, poolclass=sa.pool.NullPool,
                              isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(create % name))
        url = sa.engine.make_url(admin).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(drop % name))
        engine.dispose()
