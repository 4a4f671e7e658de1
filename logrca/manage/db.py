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

"""logrca-manage db: create and upgrade the database schema."""

from oslo_log import log

from logrca.db import migration

LOG = log.getLogger(__name__)


def do_sync(conf, args):
    """Upgrade the database to the latest (or a given) revision."""
    migration.upgrade(conf, revision=args.revision)
    print('Database at revision %s' % migration.version(conf))
    return 0


def do_version(conf, args):
    """Print the current revision of the database."""
    current = migration.version(conf)
    print(current if current is not None else 'None (empty database)')
    return 0


def add_parsers(subparsers):
    """Add ``db sync`` and ``db version``."""
    parser = subparsers.add_parser('db', help='Database schema commands.')
    commands = parser.add_subparsers(title='db commands')
    sync = commands.add_parser(
        'sync', help='Create or upgrade the database schema.')
    sync.add_argument('revision', nargs='?', default='head',
                      help='Revision to upgrade to (default: head).')
    sync.set_defaults(func=do_sync)
    version = commands.add_parser(
        'version', help='Print the revision of the database schema.')
    version.set_defaults(func=do_version)
