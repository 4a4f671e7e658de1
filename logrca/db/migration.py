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

"""Schema migrations of the logrca database, with alembic."""

import os

from alembic import command as alembic_command
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from alembic import script as alembic_script
from oslo_log import log

from logrca.db import api as db_api

LOG = log.getLogger(__name__)

_SCRIPT_LOCATION = os.path.join(os.path.dirname(__file__), 'migrations')


def _alembic_config(connection):
    config = alembic_config.Config()
    config.set_main_option('script_location', _SCRIPT_LOCATION)
    config.attributes['connection'] = connection
    return config


def _engine(conf, engine):
    if engine is not None:
        return engine, None
    dbapi = db_api.get_instance(conf)
    return dbapi.get_engine(), dbapi


def upgrade(conf, revision='head', engine=None):
    """Upgrade the database of ``conf`` (or ``engine``) to ``revision``."""
    engine, dbapi = _engine(conf, engine)
    try:
        with engine.begin() as connection:
            alembic_command.upgrade(_alembic_config(connection), revision)
    finally:
        if dbapi is not None:
            dbapi.dispose()
    LOG.info('Database upgraded to %s', revision)


def version(conf, engine=None):
    """The current revision of the database, or None when empty."""
    engine, dbapi = _engine(conf, engine)
    try:
        with engine.connect() as connection:
            context = alembic_migration.MigrationContext.configure(
                connection)
            return context.get_current_revision()
    finally:
        if dbapi is not None:
            dbapi.dispose()


def head():
    """The revision the code expects."""
    script = alembic_script.ScriptDirectory(_SCRIPT_LOCATION)
    return script.get_current_head()


def is_current(conf, engine=None):
    """True when the database is at the head revision."""
    return version(conf, engine=engine) == head()
