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

"""logrca-manage: database, replay, anomalies, detectors and evaluation."""

import sys

from oslo_config import cfg
from oslo_log import log

from logrca import conf as logrca_conf
from logrca import manage

LOG = log.getLogger(__name__)


def _add_command_parsers(subparsers):
    manage.add_categories(subparsers)


def main(argv=None):
    """Run ``logrca-manage [--config-file FILE] CATEGORY ACTION ...``."""
    conf = cfg.ConfigOpts()
    logrca_conf.register_opts(conf)
    log.register_options(conf)
    # Log to stderr, so that machine-readable output on stdout stays clean.
    conf.set_default('use_stderr', True)
    conf.register_cli_opt(cfg.SubCommandOpt(
        'category', title='Command categories',
        handler=_add_command_parsers))
    argv = sys.argv[1:] if argv is None else argv
    conf(argv, project='logrca', prog='logrca-manage')
    log.set_defaults(default_log_levels=log.get_default_log_levels() + [
        'stevedore=WARN', 'alembic=WARN'])
    log.setup(conf, 'logrca')
    func = getattr(conf.category, 'func', None)
    if func is None:
        print('logrca-manage: a command is needed; see --help',
              file=sys.stderr)
        return 2
    try:
        return func(conf, conf.category) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
