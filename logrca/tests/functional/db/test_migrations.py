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

"""Migrations upgrade to head and match the models, on every backend."""

import unittest

import sqlalchemy as sa
from oslo_db.sqlalchemy import test_migrations

from logrca.db import migration
from logrca.db import models
from logrca.tests import services
from logrca.tests.functional.db import base


def _column_name(expr):
    # A column, or desc() of a column or of its name.
    while not isinstance(expr, str) and hasattr(expr, 'element'):
        expr = expr.element
    return expr if isinstance(expr, str) else expr.name


def _index_columns(index):
    """Names of the columns of an index, descending ones too."""
    return [_column_name(expr) for expr in index.expressions]


def _descending(index):
    return {_column_name(expr) for expr in index.expressions
            if isinstance(expr, sa.UnaryExpression)
            and expr.modifier is sa.sql.operators.desc_op}


def _reflected_descending(engine, name):
    """Columns the database holds in descending order in index ``name``."""
    with engine.connect() as conn:
        if engine.dialect.name == 'mysql':
            return set(conn.execute(sa.text(
                "SELECT column_name FROM information_schema.statistics "
                "WHERE table_schema = DATABASE() AND index_name = :name "
                "AND collation = 'D'"), {'name': name}).scalars())
        if engine.dialect.name == 'sqlite':
            return {row[2] for row in conn.exec_driver_sql(
                'PRAGMA index_xinfo(%s)' % name) if row[3] and row[5]}
    for index in sa.inspect(engine).get_indexes('anomalies'):
        if index['name'] == name:
            return {column for column, sorting in index.get(
                'column_sorting', {}).items() if 'desc' in sorting}
    raise AssertionError('no index %s' % name)


class _ModelsMigrationsSync(test_migrations.ModelsMigrationsSync):
    """oslo.db's comparison of the migrated schema with the models."""

    BACKEND = None

    def setUp(self):
        super().setUp()
        database = services.temp_database(self.BACKEND)
        self.url = database.__enter__()
        self.addCleanup(database.__exit__, None, None, None)
        self.engine = sa.create_engine(self.url)
        self.addCleanup(self.engine.dispose)
        self.conf = base.make_conf(self.url)

    def get_engine(self):
        return self.engine

    def get_metadata(self):
        return models.Base.metadata

    def db_sync(self, engine):
        migration.upgrade(self.conf, engine=engine)

    def filter_metadata_diff(self, diff):
        # MySQL's and SQLite's reflection does not say which index columns
        # are descending, so alembic sees each listing index as removed and
        # added again. Drop those pairs when the columns are the same;
        # test_descending_index_columns checks the order.
        removed = {d[1].name: d[1] for d in diff if d[0] == 'remove_index'}
        added = {d[1].name: d[1] for d in diff if d[0] == 'add_index'}
        same = {name for name in removed.keys() & added.keys()
                if _index_columns(removed[name])
                == _index_columns(added[name])}
        return [d for d in diff if not (
            d[0] in ('remove_index', 'add_index') and d[1].name in same)]

    def test_descending_index_columns(self):
        migration.upgrade(self.conf, engine=self.engine)
        indexes = models.Anomaly.__table__.indexes
        checked = 0
        for index in indexes:
            self.assertEqual(_descending(index),
                             _reflected_descending(self.engine, index.name),
                             index.name)
            checked += bool(_descending(index))
        self.assertEqual(6, checked)

    def test_upgrade_sets_version(self):
        self.assertIsNone(migration.version(self.conf, engine=self.engine))
        migration.upgrade(self.conf, engine=self.engine)
        self.assertEqual(migration.head(),
                         migration.version(self.conf, engine=self.engine))
        self.assertTrue(migration.is_current(self.conf, engine=self.engine))
        # A second upgrade is a no-op, not an error.
        migration.upgrade(self.conf, engine=self.engine)
        tables = set(sa.inspect(self.engine).get_table_names())
        self.assertTrue({'anomalies', 'anomaly_evidence', 'anomaly_refs',
                         'explanations', 'feedback',
                         'conversations'} <= tables)

    def test_upgrade_from_conf(self):
        migration.upgrade(self.conf)
        self.assertEqual(migration.head(), migration.version(self.conf))


class TestSQLite(_ModelsMigrationsSync, unittest.TestCase):
    BACKEND = 'sqlite'


class TestMySQL(_ModelsMigrationsSync, unittest.TestCase):
    BACKEND = 'mysql'

    def test_mysql_types(self):
        """Microsecond datetimes, MEDIUMTEXT messages, utf8mb4 tables."""
        migration.upgrade(self.conf, engine=self.engine)
        with self.engine.connect() as conn:
            rows = dict(conn.execute(sa.text(
                "SELECT column_name, column_type FROM "
                "information_schema.columns WHERE table_schema = "
                "DATABASE() AND table_name = 'anomaly_evidence'")).all())
            charsets = set(conn.execute(sa.text(
                "SELECT table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE()")).scalars())
        self.assertEqual('datetime(6)', rows['timestamp'])
        self.assertEqual('mediumtext', rows['message'])
        self.assertTrue(all(c.startswith('utf8mb4') for c in charsets),
                        charsets)


class TestPostgreSQL(_ModelsMigrationsSync, unittest.TestCase):
    BACKEND = 'postgresql'
